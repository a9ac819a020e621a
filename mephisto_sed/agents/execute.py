"""Execute a configuration: every model of one state of the search space against one source."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..arrays import BoolArray, FloatArray
from ..catalog import Catalog
from ..likelihood import BestModel, FitAccumulator, SourceData
from ..model_grid import ModelGrid, model_from_params
from .space import SearchSpace, State

__all__ = ["Source", "Execution", "execute"]

MAX_ALTERNATIVES = 8


@dataclass
class Source:
    """One source's photometry (mJy) at its redshift."""

    id: str
    redshift: float
    bands: list[str]
    flux: FloatArray
    err: FloatArray
    upper_limit: BoolArray

    @classmethod
    def from_catalog(cls, catalog: Catalog, i: int, bands: list[str] | None = None) -> Source:
        bands = bands or list(catalog.bands)
        cols = [catalog.bands.index(b) for b in bands]
        return cls(
            str(catalog.ids[i]),
            float(catalog.redshift[i]),
            bands,
            catalog.flux[i, cols],
            catalog.err[i, cols],
            catalog.upper_limit[i, cols],
        )

    def usable_bands(self) -> list[str]:
        return [b for b, f in zip(self.bands, self.flux) if np.isfinite(f)]


@dataclass
class Execution:
    """The outcome of fitting every model of a state to a source."""

    state: State
    n_models: int
    best: BestModel
    row: dict[str, Any]
    best_model: dict[str, dict[str, Any]] = field(default_factory=dict)  # {module: {param: value}}
    seconds: float = 0.0
    alternatives: list[tuple[float, dict[str, dict[str, Any]]]] = field(default_factory=list)  # other basins
    likelihood_sum: float = 0.0  # Σ exp(-(χ² - best χ²)/2) over the models
    marginals: dict[str, list[list[float]]] = field(default_factory=dict)  # "nebular.logU": [[value, Σ L], ...]
    # the mean log10 M* at each value ("sfh.tau_main": [[value, log M*], ...]): what the mass depends on
    log_mass_by_value: dict[str, list[list[float]]] = field(default_factory=dict)

    @property
    def chi2(self) -> float:
        return float(self.best.chi2)

    @property
    def chi2_red(self) -> float:
        return float(self.row.get("best.reduced_chi_square", np.inf))


def execute(space: SearchSpace, state: State, source: Source, redshift_decimals: int = 2) -> Execution:
    """Fit all models of ``state`` (validated by ``space.to_config``) to ``source``."""
    t0 = time.perf_counter()
    cfg = space.to_config(state)
    grid = ModelGrid(cfg, source.bands)
    z = round(source.redshift, redshift_decimals)
    data = SourceData(source.flux[None, :], source.err[None, :], source.upper_limit[None, :], cfg.additionalerror)
    acc = FitAccumulator(data, track_blocks=True, track_marginals=True)
    for chunk in grid.iter_chunks(z):
        acc.add(chunk)
    row = acc.results()[0]
    best = acc.best[0]
    model = model_from_params(cfg, best.params) if np.isfinite(best.chi2) else {}
    blocks = sorted(acc.block_best[0], key=lambda t: t[0])[: 1 + MAX_ALTERNATIVES]
    alternatives = [(c, model_from_params(cfg, p)) for c, p in blocks[1:]]
    like, marginals = acc.posterior(0)
    seconds = time.perf_counter() - t0
    return Execution(
        state, acc.n_models, best, row, model, seconds, alternatives, like, marginals, acc.log_mass_by_value(0)
    )
