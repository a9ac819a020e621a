"""Photometric redshifts, in CIGALE's terms: a source without a redshift (NaN, or negative as in a
CIGALE input file) is fitted at every redshift of the ``redshifting`` module's ``redshift`` list
(or of ``DEFAULT_GRID`` when the list does not give several), all models at all redshifts in one
likelihood. The results are CIGALE's ``best.universe.redshift`` (χ² minimum) and
``bayes.universe.redshift(_err)``, plus P(z) and what photo-z catalogues report: its peak, the 68 %
interval and whether it has more than one peak.

Lyα is the one line whose strength a photo-z cannot assume: resonant scattering leaves most
continuum-selected galaxies far below Case B, while Lyα emitters sit near it, and a medium band on
the line drags z by ~0.1 either way (docs/physics.md). Where the configuration has nebular
emission, a photo-z source is therefore fitted with both — Lyα at Case B and without it — in one
likelihood (``best.photoz.lya_case_b``: 1 or 0 for the best model; ``bayes.photoz.lya_case_b``:
the posterior probability of Case-B Lyα).

Band matrices are built once per redshift and every photo-z source is fitted against each block of
models while it is in memory, so the cost per source falls with the number of sources.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import Configuration
from .model_grid import ModelChunk, ModelGrid

if TYPE_CHECKING:
    from .likelihood import FitAccumulator

__all__ = [
    "DEFAULT_GRID",
    "LYA_TAG",
    "SECONDARY_PEAK",
    "fit_over_redshifts",
    "lya_variants",
    "pz_columns",
    "pz_summary",
    "redshift_grid",
    "with_redshift",
]


def log_grid(step: float = 0.01, z_min: float = 0.01, z_max: float = 7.0) -> np.ndarray:
    """z_min ≤ z ≤ z_max in steps of ``step`` (1 + z): uniform in ln(1 + z), as photo-z codes sample it."""
    n = int(np.ceil(np.log((1 + z_max) / (1 + z_min)) / np.log(1 + step))) + 1
    return np.round((1 + z_min) * (1 + step) ** np.arange(n) - 1.0, 4)


DEFAULT_GRID = log_grid()
SECONDARY_PEAK = 0.2  # a second peak at least this fraction of the first, well apart, makes P(z) multi-modal
PEAK_SEPARATION = 0.1  # ... apart by more than this in Δz / (1 + z)


def redshift_grid(config: Configuration) -> np.ndarray:
    """The redshifts a photo-z source is fitted at: the ini's list when it gives several."""
    module = config.required("redshifting")
    values = [v for v in config.params[module]["redshift"] if v is not None]
    if len(values) > 1:
        return np.unique(np.asarray(values, dtype=float))
    return DEFAULT_GRID


LYA_TAG = ("photoz", "lya_case_b")  # the parameter a photo-z model's Lyα choice is recorded as
LYA_LINE = "Ly-alpha"


def lya_variants(config: Configuration) -> list[tuple[float | None, Configuration]]:
    """The configurations a photo-z source is fitted with, each with its ``photoz.lya_case_b``
    value: with nebular emission, Lyα at Case B (1) and without it (0), the line list otherwise as
    given; without nebular emission, the configuration alone (None)."""
    neb = config.module_of("nebular")
    if neb is None or not config.params[neb].get("emission", [True])[0]:
        return [(None, config)]
    raw = dict(config.raw_module_params.get(neb, {})) or {k: list(v) for k, v in config.params[neb].items()}
    listed = raw.get("line_list", "")
    names = [n.strip() for n in (listed.split("&") if isinstance(listed, str) else list(listed or [])) if n.strip()]
    others = [n for n in names if n != LYA_LINE]
    with_lya = " & ".join([LYA_LINE, *others]) if names else ""
    without = " & ".join(others) or "H-alpha"  # a list without Ly-alpha leaves it out (nebular.lines_kept)

    def variant(line_list: str) -> Configuration:
        modules = {
            m: dict(config.raw_module_params.get(m, {})) or {k: list(v) for k, v in config.params[m].items()}
            for m in config.modules
        }
        modules[neb] = {**raw, "line_list": line_list}
        return Configuration.from_modules(
            modules,
            bands=list(config.bands),
            additionalerror=config.additionalerror,
            data_file=config.data_file,
            extra=dict(config.extra),
        )

    return [(1.0, variant(with_lya)), (0.0, variant(without))]


def with_redshift(chunk: ModelChunk, z: float, lya: float | None = None) -> ModelChunk:
    """The chunk with its redshift as a parameter (``universe.redshift``), so the likelihood
    accumulates over redshift like over any other parameter; likewise its Lyα choice."""
    params = {**chunk.params, "universe": {"redshift": float(z)}}
    if lya is not None:
        params[LYA_TAG[0]] = {LYA_TAG[1]: float(lya)}
    return replace(chunk, params=params)


def fit_over_redshifts(
    grids: ModelGrid | Sequence[tuple[float | None, ModelGrid]],
    zgrid: np.ndarray,
    accs: Sequence[FitAccumulator],
    on_chunk: Callable[[int], None] | None = None,
) -> None:
    """Every model of ``grids`` (one grid, or (Lyα choice, grid) pairs: ``lya_variants``) at every
    redshift of ``zgrid``, tagged with its redshift and Lyα choice, into each accumulator (each
    block of models is made once for all of them); ``on_chunk(n_models)`` reports progress."""
    pairs = [(None, grids)] if isinstance(grids, ModelGrid) else list(grids)
    for z in zgrid:
        for lya, grid in pairs:
            for chunk in grid.iter_chunks(float(z)):
                tagged = with_redshift(chunk, float(z), lya)
                for acc in accs:
                    acc.add(tagged)
                if on_chunk is not None:
                    on_chunk(len(chunk))


def pz_columns(acc: FitAccumulator, i: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Source ``i``'s redshift grid, P(z) and the ``photoz.*`` columns of its row (``multimodal``
    a 0/1 flag: a results column of numbers, NaN for sources with a redshift)."""
    z, weight = acc.redshift_pdf(i)
    summary = pz_summary(z, weight)
    p = summary.pop("pz")
    summary["multimodal"] = float(summary["multimodal"])
    return z, p, {f"photoz.{k}": v for k, v in summary.items()}


def pz_summary(z: np.ndarray, weight: np.ndarray) -> dict[str, Any]:
    """P(z) on the grid (Σ likelihood per redshift, normalised) and its summary: ``z_peak``, the 68 %
    interval (``z_lo68``, ``z_hi68``, from the cumulative distribution), ``multimodal``."""
    z = np.asarray(z, float)
    w = np.clip(np.nan_to_num(np.asarray(weight, float)), 0.0, None)
    total = w.sum()
    if total <= 0:
        return {"z_peak": np.nan, "z_lo68": np.nan, "z_hi68": np.nan, "multimodal": False, "pz": w}
    p = w / total
    cdf = np.cumsum(p)
    lo = float(np.interp(0.16, cdf, z))
    hi = float(np.interp(0.84, cdf, z))
    peak = int(np.argmax(p))
    return {
        "z_peak": float(z[peak]),
        "z_lo68": min(lo, float(z[peak])),
        "z_hi68": max(hi, float(z[peak])),
        "multimodal": _multimodal(z, p, peak),
        "pz": p,
    }


def _multimodal(z: np.ndarray, p: np.ndarray, peak: int) -> bool:
    """A local maximum of P(z) per unit ln(1 + z) (the grid's own measure) holding at least
    SECONDARY_PEAK of the main peak, more than PEAK_SEPARATION in Δz/(1+z) away."""
    if p.size < 3:
        return False
    inner = (p[1:-1] >= p[:-2]) & (p[1:-1] > p[2:])
    maxima = np.flatnonzero(np.concatenate([[p[0] > p[1]], inner, [p[-1] > p[-2]]]))
    far = np.abs(z[maxima] - z[peak]) / (1 + z[peak]) > PEAK_SEPARATION
    return bool(np.any(far & (p[maxima] >= SECONDARY_PEAK * p[peak])))
