"""Plain grid fits of catalogues (no agent): every model of a configuration for every source."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.cosmology import FLRW
from astropy.table import Table
from tqdm.auto import tqdm

from .catalog import Catalog
from .config import ConfigError, Configuration
from .likelihood import BestModel, FitAccumulator, SourceData, bayes_values, fit_sigma
from .model_grid import SED, ModelGrid, model_from_params
from .photometry import DEFAULT_COSMOLOGY
from .plausibility import estimate_warnings

log = logging.getLogger(__name__)


@dataclass
class SourceFit:
    """One source's fit: observations, best model and its spectrum (mJy, observed frame)."""

    id: str
    redshift: float
    model_redshift: float
    bands: list[str]
    flux: np.ndarray
    err: np.ndarray
    upper_limit: np.ndarray
    best: BestModel
    row: dict[str, Any]
    model: dict[str, dict[str, Any]] = field(default_factory=dict)
    sed: SED | None = None
    additionalerror: float = 0.0  # the fraction of the flux added to σ in quadrature, as in χ²
    pz: tuple[np.ndarray, np.ndarray] | None = None  # photometric redshift: (z grid, P(z))

    @property
    def sigma(self) -> np.ndarray:
        """The σ that χ² uses: catalogue error ⊕ ``additionalerror`` × flux (mJy)."""
        return fit_sigma(self.err, self.flux, self.additionalerror)

    @property
    def residuals(self) -> np.ndarray:
        """(observed - model)/σ per band with χ²'s σ (:attr:`sigma`), NaN where missing."""
        return (self.flux - self.best.fluxes) / self.sigma


@dataclass
class FitResults:
    table: Table
    fits: list[SourceFit]
    bands: list[str]
    config: Configuration


def fit_bands(catalog: Catalog, config: Configuration) -> list[str]:
    """The bands to fit: the configuration's list (when given) as present in the catalogue."""
    if not config.bands:
        return list(catalog.bands)
    missing = [b for b in config.bands if b not in catalog.bands]
    unexplained = [b for b in missing if b not in catalog.dropped_bands]
    if unexplained:
        raise ConfigError(f"bands in the configuration but not in the catalogue: {', '.join(unexplained)}")
    if missing:
        log.warning("not fitting bands dropped from the catalogue: %s", ", ".join(missing))
    return [b for b in config.bands if b in catalog.bands]


PHOTOZ_BATCH = 512  # photo-z sources per accumulator: each block of models is fitted to every batch


def fixed_redshift(config: Configuration) -> float | None:
    """The one redshift the ini imposes on every source, if it gives exactly one (CIGALE: a list
    serves the sources without a redshift; each other source is fitted at its own)."""
    values = config.params[config.required("redshifting")]["redshift"]
    return float(values[0]) if len(values) == 1 and values[0] is not None else None


def fit_catalog(
    catalog: Catalog,
    config: Configuration,
    *,
    redshift_decimals: int = 2,
    cosmology: FLRW = DEFAULT_COSMOLOGY,
    with_sed: bool = True,
    progress: bool = True,
    on_fit: Callable[[SourceFit], None] | None = None,
    keep_fits: bool = True,
) -> FitResults:
    """Fit every source with every model of ``config``; models are computed once per redshift
    rounded to ``redshift_decimals`` (CIGALE's ``redshift_decimals``). Sources without a redshift
    (NaN) get a photometric one: fitted at every redshift of ``photoz.redshift_grid(config)``.

    ``on_fit`` sees each source's fit as soon as it is made (to write its files); with
    ``keep_fits=False`` the fits are not kept (``FitResults.fits`` is empty) and memory stays
    flat in the number of sources: the results table is filled column by column."""
    from .photoz import lya_variants, redshift_grid

    bands = fit_bands(catalog, config)
    idx = [catalog.bands.index(b) for b in bands]
    grid = ModelGrid(config, bands, cosmology=cosmology)
    fixed_z = fixed_redshift(config)
    zs = np.full(len(catalog), fixed_z) if fixed_z is not None else np.asarray(catalog.redshift, float)
    photo = ~np.isfinite(zs)
    model_z = np.round(zs, redshift_decimals)
    fits: list[SourceFit | None] = [None] * len(catalog) if keep_fits else []
    columns = ResultColumns(len(catalog), bands, config.additionalerror)
    groups = sorted(set(model_z[~photo].tolist()))
    zgrid = redshift_grid(config) if photo.any() else np.array([])
    # photo-z models: with and without Lyα where there is nebular emission (photoz.lya_variants)
    variants = [
        (lya, cfg, ModelGrid(cfg, bands, cosmology=cosmology))
        for lya, cfg in (lya_variants(config) if photo.any() else [])
    ]
    total = sum(grid.n_models(z) for z in groups) + len(variants) * sum(grid.n_models(float(z)) for z in zgrid)
    bar = tqdm(
        total=total, desc=f"grid fit of {len(catalog)} sources", unit="model", unit_scale=True, disable=not progress
    )

    def data(members: np.ndarray) -> SourceData:
        return SourceData(
            catalog.flux[members][:, idx],
            catalog.err[members][:, idx],
            catalog.upper_limit[members][:, idx],
            config.additionalerror,
        )

    def emit(members: np.ndarray, acc: FitAccumulator, z: float | None) -> None:
        for pos, (k, row) in enumerate(zip(members, acc.results())):
            cfg, g = (config, grid) if z is not None else _variant_of(acc.best[pos].params, variants)
            fit = _source_fit(catalog, int(k), idx, bands, cfg, g, acc, pos, row, z, with_sed)
            columns.put(int(k), fit)
            if on_fit is not None:
                on_fit(fit)
            if keep_fits:
                fits[k] = fit

    for z in groups:
        members = np.flatnonzero(model_z == z)
        acc = FitAccumulator(data(members))
        for chunk in grid.iter_chunks(float(z)):
            acc.add(chunk)
            bar.update(len(chunk))
        emit(members, acc, float(z))
    if photo.any():
        _fit_photoz([(lya, g) for lya, _, g in variants], zgrid, np.flatnonzero(photo), data, emit, bar)
    bar.close()
    done = [f for f in fits if f is not None]
    return FitResults(columns.table(), done, bands, config)


def _variant_of(
    params: dict[str, Any], variants: list[tuple[float | None, Configuration, ModelGrid]]
) -> tuple[Configuration, ModelGrid]:
    """The configuration and grid of the photo-z variant a best model came from (its Lyα choice)."""
    from .photoz import LYA_TAG

    lya = (params or {}).get(LYA_TAG[0], {}).get(LYA_TAG[1])
    for tag, cfg, grid in variants:
        if tag is None or lya is None or float(tag) == float(lya):
            return cfg, grid
    raise ValueError(f"no photo-z variant with {LYA_TAG[1]} = {lya}")


def _fit_photoz(
    grids: list[tuple[float | None, ModelGrid]],
    zgrid: np.ndarray,
    members: np.ndarray,
    data: Callable[[np.ndarray], SourceData],
    emit: Callable[[np.ndarray, FitAccumulator, float | None], None],
    bar: Any,
) -> None:
    """All models of ``grids`` (the photo-z variants, by Lyα choice) at every redshift of ``zgrid`` in
    one likelihood per source; each block of models is made once and fitted to every batch of sources."""
    from .photoz import fit_over_redshifts

    batches = [members[i : i + PHOTOZ_BATCH] for i in range(0, len(members), PHOTOZ_BATCH)]
    accs = [FitAccumulator(data(b)) for b in batches]
    fit_over_redshifts(grids, zgrid, accs, bar.update)
    for b, acc in zip(batches, accs):
        emit(b, acc, None)


def _source_fit(
    catalog: Catalog,
    k: int,
    idx: list[int],
    bands: list[str],
    config: Configuration,
    grid: ModelGrid,
    acc: FitAccumulator,
    pos: int,
    row: dict[str, Any],
    z: float | None,
    with_sed: bool,
) -> SourceFit:
    """Source ``k``'s fit (``z`` None: a photometric redshift, read off its P(z))."""
    from .photoz import pz_columns

    best = acc.best[pos]
    pz = None
    if z is None:
        zz, p, columns = pz_columns(acc, pos)
        pz = (zz, p)
        row.update(columns)
        z = best.redshift
    fit = SourceFit(
        str(catalog.ids[k]),
        float(catalog.redshift[k]),
        float(z),
        bands,
        catalog.flux[k, idx],
        catalog.err[k, idx],
        catalog.upper_limit[k, idx],
        best,
        row,
        additionalerror=config.additionalerror,
        pz=pz,
    )
    if np.isfinite(best.chi2):
        fit.model = model_from_params(config, best.params)
        row["warnings"] = "; ".join(estimate_warnings(bayes_values(row), fit.model, float(z)))
        if with_sed:
            fit.sed = grid.sed(fit.model, float(z))
    return fit


class ResultColumns:
    """The results table filled source by source into one array per column (catalogue order):
    ~8 bytes per number instead of a dict per source."""

    def __init__(self, n: int, bands: list[str], additionalerror: float):
        self.n, self.bands, self.additionalerror = n, bands, additionalerror
        self.filled = np.zeros(n, dtype=bool)
        self.columns: dict[str, np.ndarray] = {}

    def _column(self, key: str, value: Any) -> np.ndarray:
        col = self.columns.get(key)
        if col is None:
            numeric = isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))
            col = np.full(self.n, np.nan) if numeric else np.full(self.n, None, dtype=object)
            self.columns[key] = col
        return col

    def put(self, k: int, fit: SourceFit) -> None:
        self.filled[k] = True
        values: dict[str, Any] = {"id": fit.id, "redshift": fit.redshift, "model_redshift": fit.model_redshift}
        values.update(fit.row)
        model_fluxes = fit.best.fluxes
        residuals = fit.residuals if model_fluxes is not None else None
        for j, b in enumerate(self.bands):
            values[f"best.{b}"] = float(model_fluxes[j]) if model_fluxes is not None else np.nan
        for j, b in enumerate(self.bands):
            values[f"residual.{b}"] = float(residuals[j]) if residuals is not None else np.nan
        for key, value in values.items():
            self._column(key, value)[k] = value

    def table(self) -> Table:
        t = Table()
        rows = np.flatnonzero(self.filled)
        for key, col in self.columns.items():
            part = col[rows]
            if part.dtype == object:  # text columns (id, warnings): str, "" where a row had none
                part = np.array(["" if v is None else str(v) for v in part], dtype=str)
            t[key] = part
        for b in self.bands:
            if f"best.{b}" in t.colnames:
                t[f"best.{b}"].unit = "mJy"
                t[f"residual.{b}"].description = (
                    f"(obs - model)/sigma, sigma = error (+) additionalerror x flux in quadrature, as in chi2 "
                    f"(additionalerror = {self.additionalerror:g})"
                )
        return t
