"""Draine & Li dust emission templates (energy balance), interpolated as bagpipes does."""

from __future__ import annotations

import numpy as np

from .grids import QPAH, UMIN, store


def _bracket(grid: np.ndarray, value: float) -> tuple[int, float]:
    i = int(np.clip(np.searchsorted(grid, value) - 1, 0, grid.size - 2))
    return i, (value - grid[i]) / (grid[i + 1] - grid[i])


def dl_template(qpah: float, umin: float, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """``(rest Å, L_λ per Å)`` normalised to unit luminosity: (1-γ) δ(Umin) + γ Umin..Umax (α=2)."""
    iq, fq = _bracket(QPAH, qpah)
    iu, fu = _bracket(UMIN, umin)
    spec = 0.0
    for q_idx, q_w in ((iq, 1 - fq), (iq + 1, fq)):
        wave, only, umax = store().dust(q_idx)
        mix = (1 - gamma) * only + gamma * umax
        spec = spec + q_w * ((1 - fu) * mix[iu] + fu * mix[iu + 1])
    spec = np.clip(spec, 0.0, None)
    return wave, spec / np.trapezoid(spec, wave)
