"""Sources without a redshift in the agents' search: a first look that spans redshift, then the
tree search at the redshifts that survive.

1. The first look: the expert's coarse first-look grid (at most ``FIRST_LOOK_MODELS`` models per
   redshift; with nebular emission, Lyα at Case B and without, each with half) at every redshift of
   ``photoz.DEFAULT_GRID``, all in one likelihood — P(z), its peak, 68 % interval and modality, as
   ``mephisto-sed grid`` reports them.
2. The search: the usual tree search at the peak of P(z) and, when P(z) is multi-modal, also at the
   second peak; the answer with the lower χ² is kept, and both are in its row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..likelihood import FitAccumulator, SourceData
from ..model_grid import ModelGrid
from ..photoz import (
    DEFAULT_GRID,
    LYA_TAG,
    PEAK_SEPARATION,
    fit_over_redshifts,
    log_grid,
    lya_variants,
    pz_columns,
)
from .execute import Source
from .policy import ExpertPolicy, Policy
from .space import SearchSpace

FIRST_LOOK_MODELS = 20_000  # the first look's budget (shared by the Lyα choices): a quarter of it per redshift
# an anomaly at the catalogue's redshift: another redshift "explains" the data when even the coarse
# first look there beats the whole search by this much in χ² (3σ for one extra parameter, z)
OTHER_REDSHIFT_DCHI2 = 9.0
OTHER_REDSHIFT_SEPARATION = 0.15  # Δz / (1 + z): a catastrophic photo-z outlier's definition
# the other redshifts tried: steps of 0.05 (1 + z), a third of the outlier separation (44 redshifts;
# each costs a grid of models in every band, so the photo-z grid's 209 would cost minutes a source)
OTHER_REDSHIFT_GRID = log_grid(0.05)


@dataclass
class PhotoZLook:
    z: np.ndarray
    pz: np.ndarray
    summary: dict[str, Any]  # the photo-z columns, as ``mephisto-sed grid`` writes them
    models: int
    candidates: list[float] = field(default_factory=list)  # redshifts the search runs at, best first
    best_chi2: float = float("inf")  # the first look's best model, over every redshift
    best_z: float = float("nan")

    def columns(self) -> dict[str, Any]:
        """The photo-z columns of a results row, with the first look's cost."""
        return {**self.summary, "photoz.first_look_models": self.models}


def first_look_over_redshift(
    space: SearchSpace, source: Source, policy: Policy | None = None, zgrid: np.ndarray | None = None
) -> PhotoZLook:
    """P(z) of ``source`` from the first-look grid at every redshift of ``zgrid``."""
    zgrid = DEFAULT_GRID if zgrid is None else np.asarray(zgrid, float)
    policy = policy or ExpertPolicy()
    # the first look is chosen at z = 0, where every age is allowed; each redshift drops the ages
    # older than its universe by itself
    at_zero = replace(source, redshift=0.0)
    state = policy.initial(space, at_zero, FIRST_LOOK_MODELS)
    # with nebular emission, Lyα at Case B and without it (resonant scattering and dust can remove
    # it), as `mephisto-sed grid` fits photometric redshifts (photoz.lya_variants); each choice gets
    # half the budget: on 40 COSMOS spec-z galaxies the two coarser looks found z better than the
    # one finer look with Case-B Lyα, in the same time (docs/physics.md)
    variants = lya_variants(space.to_config(state))
    if len(variants) > 1:
        state = policy.initial(space, at_zero, FIRST_LOOK_MODELS // len(variants))
        variants = lya_variants(space.to_config(state))
    grids = [(lya, ModelGrid(cfg, source.bands)) for lya, cfg in variants]
    acc = FitAccumulator(
        SourceData(source.flux[None, :], source.err[None, :], source.upper_limit[None, :], space.additionalerror)
    )
    fit_over_redshifts(grids, zgrid, [acc])
    z, pz, columns = pz_columns(acc, 0)
    best = acc.best[0]
    lya = best.params.get(LYA_TAG[0], {}).get(LYA_TAG[1])
    if lya is not None:
        columns["photoz.lya_case_b"] = float(lya)  # the first look's best model: Lyα at Case B (1) or none (0)
    return PhotoZLook(z, pz, columns, acc.n_models, _candidates(z, pz, columns), best.chi2, best.redshift)


def other_redshift(space: SearchSpace, source: Source, chi2: float, policy: Policy | None = None) -> dict[str, Any]:
    """Whether a source left unexplained at its catalogue redshift is explained at another one: the
    first look over every redshift of ``OTHER_REDSHIFT_GRID`` farther than
    ``OTHER_REDSHIFT_SEPARATION`` in Δz/(1+z) from it. Columns ``other_redshift.z``, ``.chi2``,
    ``.models`` and ``.better`` (its χ² below the search's ``chi2`` by ≥ ``OTHER_REDSHIFT_DCHI2``:
    the coarse look is an upper bound on what that redshift allows, so a win is conservative)."""
    z0 = source.redshift
    grid = OTHER_REDSHIFT_GRID
    far = grid[np.abs(grid - z0) / (1 + z0) > OTHER_REDSHIFT_SEPARATION]
    look = first_look_over_redshift(space, replace(source, redshift=float("nan")), policy, zgrid=far)
    if not np.isfinite(look.best_chi2):
        return {"other_redshift.models": look.models, "other_redshift.better": False}
    return {
        "other_redshift.z": round(look.best_z, 4),
        "other_redshift.chi2": look.best_chi2,
        "other_redshift.models": look.models,
        "other_redshift.better": bool(look.best_chi2 <= chi2 - OTHER_REDSHIFT_DCHI2),
    }


def _candidates(z: np.ndarray, pz: np.ndarray, columns: dict[str, Any]) -> list[float]:
    """The peak of P(z), and the highest point well away from it when P(z) is multi-modal."""
    if not np.isfinite(columns["photoz.z_peak"]):
        return []
    peak = float(columns["photoz.z_peak"])
    out = [peak]
    if columns["photoz.multimodal"]:
        far = np.abs(z - peak) / (1 + peak) > PEAK_SEPARATION
        out.append(float(z[far][np.argmax(pz[far])]))
    return out


def photoz_row(look: PhotoZLook, searched: list[tuple[float, float, int]]) -> dict[str, Any]:
    """The columns a photometric redshift adds to a source's row (JSON-safe: no NaN), given the
    searches made as (redshift, best χ², models); the first is the one kept."""
    cols: dict[str, Any] = {k: v for k, v in look.columns().items() if isinstance(v, (int, float)) and np.isfinite(v)}
    cols["photoz.searched_at"] = ",".join(f"{z:g}" for z, _, _ in searched)
    if all(np.isfinite(c) for _, c, _ in searched):
        cols["photoz.search_chi2"] = ",".join(f"{c:.2f}" for _, c, _ in searched)
    cols["best.universe.redshift"] = searched[0][0]
    cols["photoz.other_search_models"] = sum(m for _, _, m in searched[1:])
    return cols


def search_without_redshift(
    source: Source, space: SearchSpace, policy: Policy, run: Any, look: PhotoZLook | None = None
) -> Any:
    """The search result at the best surviving redshift, its row's photo-z columns in
    ``extra_row``. ``run(source_at_z)`` runs one tree search."""
    look = look or first_look_over_redshift(space, source, policy)
    if not look.candidates:
        raise ValueError(f"source {source.id}: no redshift fits its photometry (P(z) is empty)")
    results = sorted((run(replace(source, redshift=round(z, 4))) for z in look.candidates), key=lambda r: r.best.chi2)
    best = results[0]
    best.extra_row = photoz_row(look, [(r.source.redshift, r.best.chi2, r.models_evaluated) for r in results])
    return best
