"""`mephisto-sed bench photoz`: photometric redshifts against spectroscopic ones.

The COSMOS2020 galaxies with spectroscopic redshifts in ``../shared/data`` (or ``--catalog``) are
fitted twice with one compact photo-z grid drawn from the COSMOS team's ini (same bands, lines and
``additionalerror``, shorter ladders): with their redshift removed (every redshift of
``photoz.DEFAULT_GRID``) and at their spectroscopic redshift. Reported in the photo-z community's
terms — ``sigma_nmad`` = 1.48 × median |Δz − median Δz| / (1 + z_spec), ``outlier_fraction``
(|Δz|/(1+z_spec) > 0.15), ``bias`` (median Δz/(1+z_spec)) — for the χ²-minimum redshift and the
Bayesian one, with the cost against fixed z and how log M* and SFR at free z compare with those at
the spectroscopic z. The JWST Little Red Dots are compared with their catalogue's ``z_phot`` (a
comparison, not a truth).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .catalog import Catalog, read_catalog
from .config import Configuration, read_pcigale_ini
from .gridfit import fit_catalog
from .settings import settings

# The compact photo-z grid: the COSMOS ini's modules with these ladders (the rest as in the ini)
PHOTOZ_LADDERS: dict[str, dict[str, list[Any]]] = {
    "sfhdelayed": {
        "tau_main": [100.0, 400.0, 1000.0, 4000.0],
        "age_main": [50.0, 200.0, 600.0, 1500.0, 3000.0, 6000.0],
        "f_burst": [0.0],
        "age_burst": [20.0],
        "tau_burst": [50.0],
    },
    "bc03": {"metallicity": [0.004, 0.02]},
    "nebular": {"logU": [-3.0, -2.0], "zgas": [0.004, 0.02]},
    "dustatt_modified_starburst": {"E_BV_lines": [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0]},
    "redshifting": {"redshift": [None]},
}
OUTLIER = 0.15


def photoz_config(reference: Configuration) -> Configuration:
    """The reference ini with the photo-z ladders (its bands, lines and additionalerror kept); a
    photo-z fit tries Lyα both at Case B and without (``photoz.lya_variants``)."""
    modules = {}
    for m in reference.modules:
        raw = dict(reference.raw_module_params.get(m, {})) or {k: v for k, v in reference.params[m].items()}
        modules[m] = raw | PHOTOZ_LADDERS.get(m, {})
    return Configuration.from_modules(modules, bands=list(reference.bands), additionalerror=reference.additionalerror)


def outliers(z_phot: np.ndarray, z_ref: np.ndarray) -> np.ndarray:
    """Where |Δz|/(1 + z_ref) exceeds ``OUTLIER`` (the photo-z community's catastrophic outliers)."""
    return np.abs(z_phot - z_ref) / (1 + z_ref) > OUTLIER


def photoz_metrics(z_phot: np.ndarray, z_ref: np.ndarray) -> dict[str, float]:
    """σ_NMAD, outlier fraction and bias of ``z_phot`` against ``z_ref``."""
    ok = np.isfinite(z_phot) & np.isfinite(z_ref)
    dz = (z_phot[ok] - z_ref[ok]) / (1 + z_ref[ok])
    return {
        "n": int(ok.sum()),
        "sigma_nmad": float(1.48 * np.median(np.abs(dz - np.median(dz)))),
        "outlier_fraction": float(np.mean(outliers(z_phot[ok], z_ref[ok]))),
        "bias": float(np.median(dz)),
    }


def _log(x: Any) -> np.ndarray:
    v = np.asarray(x, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > 0, np.log10(v), np.nan)


def _frac_lya(table: Any) -> float | None:
    """The fraction of sources whose best model has Case-B Lyα (None: no nebular emission)."""
    col = "best.photoz.lya_case_b"
    return float(np.nanmean(np.asarray(table[col], float))) if col in table.colnames else None


def _compare(free: Any, fixed: Any) -> dict[str, float]:
    """How the physical answers at free z compare with those at the spectroscopic z."""
    out = {}
    for key, col in (("logm", "bayes.stellar.m_star"), ("logsfr100", "bayes.sfh.sfr100Myrs")):
        if col in free.colnames and col in fixed.colnames:
            d = _log(free[col]) - _log(fixed[col])
            out[f"median_abs_d{key}_free_vs_specz"] = float(np.nanmedian(np.abs(d)))
            out[f"median_d{key}_free_vs_specz"] = float(np.nanmedian(d))
    return out


FITS_AT_ZSPEC = 3.0  # best χ²_red at the spectroscopic z up to which the models explain a galaxy there
DCHI2_ELSEWHERE = 9.0  # Δχ² by which the data prefer the photometric z: a 3σ preference


def where_models_fit(free: Any, fixed: Any, z_spec: np.ndarray) -> dict[str, Any]:
    """The photo-z measures on the galaxies the grid explains at their spectroscopic z (best
    χ²_red ≤ ``FITS_AT_ZSPEC`` there): the photo-z's own error apart from spectroscopic redshifts, or
    photometry, that no model at that z fits. And how many outliers the data prefer at their
    photometric z by Δχ² ≥ ``DCHI2_ELSEWHERE``: misses the likelihood cannot be blamed for."""
    z_phot = np.asarray(free["best.universe.redshift"], float)
    ok = np.asarray(fixed["best.reduced_chi_square"], float) <= FITS_AT_ZSPEC
    dchi2 = np.asarray(fixed["best.chi_square"], float) - np.asarray(free["best.chi_square"], float)
    outlier = outliers(z_phot, z_spec)
    return {
        "chi2_red_at_zspec_max": FITS_AT_ZSPEC,
        "fraction_of_sample": float(np.mean(ok)),
        **photoz_metrics(z_phot[ok], z_spec[ok]),
        "outliers_preferring_their_photoz_by_dchi2_9": float(np.mean(dchi2[outlier] >= DCHI2_ELSEWHERE))
        if outlier.any()
        else 0.0,
    }


def outliers_against_the_full_grid(
    cat: Catalog, free: Any, reference: Configuration, ini: Path, catalog: Path, progress: bool
) -> dict[str, Any]:
    """The outliers fitted at their spectroscopic z by the reference ini's whole grid (the COSMOS
    team's 24.5 million models; ~10 s a galaxy, cached like ``bench search``'s references): how many
    still fit worse there than the compact photo-z grid does at their photometric z, by Δχ² ≥
    ``DCHI2_ELSEWHERE``. Those the richest model set cannot explain at the spectroscopic z as well
    as 1,728 models explain them elsewhere."""
    from .agents.bench_search import _cache_path, reference_chi2
    from .agents.execute import Source
    from .agents.space import SearchSpace

    z_spec = np.asarray(cat.redshift, float)
    z_phot = np.asarray(free["best.universe.redshift"], float)
    rows = np.flatnonzero(outliers(z_phot, z_spec))
    space = SearchSpace.from_config(reference)
    space.bands = [b for b in reference.bands if b in cat.bands] if reference.bands else list(cat.bands)
    sources = [Source.from_catalog(cat, int(i), space.bands) for i in rows]
    full = reference_chi2(space, sources, _cache_path(ini, catalog), progress)
    dchi2 = np.array([full[s.id]["chi2"] - float(free["best.chi_square"][i]) for i, s in zip(rows, sources)])
    return {
        "n": len(rows),
        "reference_models": space.size(space.reference_state()),
        "preferring_their_photoz_by_dchi2_9": float(np.mean(dchi2 >= DCHI2_ELSEWHERE)) if len(rows) else 0.0,
        "median_dchi2": float(np.median(dchi2)) if len(rows) else 0.0,
    }


def _photoz_run(cat: Catalog, cfg: Configuration, progress: bool) -> tuple[Any, float]:
    free = cat.select(np.arange(len(cat)))
    free.redshift[:] = np.nan
    t0 = time.perf_counter()
    res = fit_catalog(free, cfg, with_sed=False, progress=progress, keep_fits=False)
    return res.table, time.perf_counter() - t0


def bench_photoz(
    catalog: str | Path | None = None,
    n: int = 100,
    ini: str | Path | None = None,
    lrd: bool = True,
    progress: bool = True,
    seed: int = 0,
    n_agents: int = 0,
    full_grid_outliers: bool = False,
) -> dict[str, Any]:
    """The photo-z grid's redshifts against the spectroscopic ones; with ``n_agents``, also the
    agents' first look over redshift (the default search space) on the first ``n_agents`` galaxies;
    with ``full_grid_outliers``, the outliers fitted by the reference's whole grid at z_spec."""
    from .agents.bench_search import DEFAULT_CATALOG, DEFAULT_INI

    reference = read_pcigale_ini(Path(ini) if ini else DEFAULT_INI)
    cfg = photoz_config(reference)
    cat = read_catalog(Path(catalog) if catalog else DEFAULT_CATALOG, on_unknown="skip")
    # a random draw: the file is ordered by field, its first rows lack the near-IR and medium bands
    pick = np.sort(np.random.default_rng(seed).choice(len(cat), min(n, len(cat)), replace=False))
    cat = cat.select(pick)
    z_spec = np.asarray(cat.redshift, float)
    table, t_free = _photoz_run(cat, cfg, progress)
    t0 = time.perf_counter()
    fixed = fit_catalog(cat, cfg, with_sed=False, progress=progress, keep_fits=False).table
    t_fixed = time.perf_counter() - t0
    best = photoz_metrics(np.asarray(table["best.universe.redshift"], float), z_spec)
    bayes = photoz_metrics(np.asarray(table["bayes.universe.redshift"], float), z_spec)
    lo, hi = np.asarray(table["photoz.z_lo68"], float), np.asarray(table["photoz.z_hi68"], float)
    out: dict[str, Any] = {
        "benchmark": "photoz",
        "catalog": str(catalog or DEFAULT_CATALOG),
        "seed": seed,
        "median_bands_per_source": float(np.median(table["n_bands"])),
        "models_per_redshift": cfg.n_models,
        **best,
        "bayes": bayes,
        "frac_zspec_inside_68": float(np.mean((z_spec >= lo) & (z_spec <= hi))),
        "frac_multimodal": float(np.mean(np.asarray(table["photoz.multimodal"], float) > 0.5)),
        "frac_best_with_lya": _frac_lya(table),
        "seconds_per_source": t_free / len(cat),
        "models_per_source": int(np.median(table["models_evaluated"])),
        "seconds_per_source_fixed_z": t_fixed / len(cat),
        "models_per_source_fixed_z": int(np.median(fixed["models_evaluated"])),
        **_compare(table, fixed),
        "where_models_fit_at_zspec": where_models_fit(table, fixed, z_spec),
    }
    if full_grid_outliers:
        out["outliers_full_grid_at_zspec"] = outliers_against_the_full_grid(
            cat,
            table,
            reference,
            Path(ini) if ini else DEFAULT_INI,
            Path(catalog) if catalog else DEFAULT_CATALOG,
            progress,
        )
    if n_agents:
        out["agents_first_look"] = agents_first_look(cat.select(np.arange(min(n_agents, len(cat)))), progress)
    if lrd:
        out["lrd"] = _lrd(cfg, progress)
    return out


def agents_first_look(cat: Catalog, progress: bool = True) -> dict[str, Any]:
    """The agents' photo-z first look (``agents.photoz_search``, default space, Lyα both ways) on
    ``cat``: the peak of its P(z) against the spectroscopic redshift, its cost and Lyα choices."""
    from dataclasses import replace

    from tqdm.auto import tqdm

    from .agents.execute import Source
    from .agents.photoz_search import first_look_over_redshift
    from .agents.space import default_space

    space = default_space()
    space.bands = [b for b in space.bands if b in cat.bands] if space.bands else list(cat.bands)
    z_peak, models, lya = [], [], []
    t0 = time.perf_counter()
    for i in tqdm(range(len(cat)), desc="agents' first look", unit="src", disable=not progress):
        src = replace(Source.from_catalog(cat, i, space.bands), redshift=float("nan"))
        look = first_look_over_redshift(space, src)
        z_peak.append(look.summary["photoz.z_peak"])
        models.append(look.models)
        lya.append(look.summary.get("photoz.lya_case_b", np.nan))
    return {
        "n": len(cat),
        **photoz_metrics(np.asarray(z_peak, float), np.asarray(cat.redshift, float)),
        "seconds_per_source": (time.perf_counter() - t0) / max(len(cat), 1),
        "models_per_source": int(np.median(models)) if models else 0,
        "frac_best_with_lya": float(np.nanmean(lya)) if np.isfinite(lya).any() else None,
    }


def _lrd(cosmos_cfg: Configuration, progress: bool) -> dict[str, Any] | None:
    """The Little Red Dots (JWST bands) against their catalogue's z_phot, as a comparison."""
    path = settings().cosmos_dir.parent / "kokorev2024_lrd" / "lrd_table_v1.1.fits"
    if not path.exists():
        return None
    cat = read_catalog(path, preset="kokorev2024_lrd", on_unknown="skip")
    cfg = Configuration.from_modules(
        {m: dict(cosmos_cfg.raw_module_params.get(m, {})) for m in cosmos_cfg.modules},
        bands=list(cat.bands),
        additionalerror=cosmos_cfg.additionalerror,
    )
    z_cat = np.asarray(cat.redshift, float)
    table, seconds = _photoz_run(cat, cfg, progress)
    return {
        "comparison": "catalogue z_phot (not a truth)",
        **photoz_metrics(np.asarray(table["best.universe.redshift"], float), z_cat),
        "seconds_per_source": seconds / len(cat),
    }
