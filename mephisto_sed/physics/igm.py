"""Inoue et al. (2014) IGM transmission from the bagpipes table."""

from __future__ import annotations

import numpy as np

from .grids import store

LYA = 1215.67


def igm_transmission(rest_wave: np.ndarray, redshift: float) -> np.ndarray:
    """Mean IGM transmission at rest wavelengths (Å) for a source at ``redshift``.

    Linear in z between table rows; 1 redward of Lyα. A line at Lyα itself takes the
    table's last value blueward of it, as the IGM absorbs half of a line's profile at least.
    """
    z_tab, w_tab, t_tab = store().igm()
    if not 0.0 <= redshift <= z_tab[-1]:
        raise ValueError(f"redshift {redshift} outside the IGM table range 0-{z_tab[-1]:g}")
    i = min(int(np.searchsorted(z_tab, redshift, side="right")) - 1, z_tab.size - 2)
    f = (redshift - z_tab[i]) / (z_tab[i + 1] - z_tab[i])
    row = (1 - f) * t_tab[i] + f * t_tab[i + 1]
    w = np.asarray(rest_wave, dtype=float)
    out = np.ones_like(w)
    blue = w <= LYA + 1e-6
    out[blue] = np.interp(np.minimum(w[blue], 1215.0), w_tab, row, left=0.0)
    return out
