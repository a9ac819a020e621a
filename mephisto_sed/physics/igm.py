"""Mean IGM transmission of Inoue, Shimizu, Iwata & Tanaka (2014, MNRAS 442, 1805).

Lyman-series optical depths of the Lyman-α forest (LAF) and damped Lyman-α systems (DLA) use
the 39 lines of the paper's Table 2 (the coefficient file shipped in the bagpipes wheel); the
Lyman continuum follows eqs. (25)-(29). Computed on demand for any redshift: no table to build.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .grids import grid_dir

LYA = 1215.67
LYMAN_LIMIT = 911.8
MAX_REDSHIFT = 10.0


@lru_cache(maxsize=1)
def _coefficients() -> np.ndarray:
    """Columns: j, λ_j (Å), A_LAF_j1, A_LAF_j2, A_LAF_j3, A_DLA_j1, A_DLA_j2."""
    return np.loadtxt(grid_dir() / "lyman_series_coefs_inoue_2014_table2.txt")


def _tau_lyman_series(lam_obs: np.ndarray, zs: float) -> np.ndarray:
    tau = np.zeros_like(lam_obs)
    for _, lam_j, a1, a2, a3, d1, d2 in _coefficients():
        x = lam_obs / lam_j
        on = (x > 1.0) & (x < 1.0 + zs)
        laf = np.where(x < 2.2, a1 * x**1.2, np.where(x < 5.7, a2 * x**3.7, a3 * x**5.5))
        dla = np.where(x < 3.0, d1 * x**2.0, d2 * x**3.0)
        tau += np.where(on, laf + dla, 0.0)
    return tau


def _tau_lyman_continuum(lam_obs: np.ndarray, zs: float) -> np.ndarray:
    x = lam_obs / LYMAN_LIMIT
    on = (x > 1.0) & (x < 1.0 + zs)
    z1 = 1.0 + zs
    # Lyman-α forest, eqs. (25)-(27)
    if zs < 1.2:
        laf = 0.325 * (x**1.2 - z1**-0.9 * x**2.1)
    elif zs < 4.7:
        laf = np.where(
            x < 2.2, 2.55e-2 * z1**1.6 * x**2.1 + 0.325 * x**1.2 - 0.250 * x**2.1, 2.55e-2 * (z1**1.6 * x**2.1 - x**3.7)
        )
    else:
        laf = np.where(
            x < 2.2,
            5.22e-4 * z1**3.4 * x**2.1 + 0.325 * x**1.2 - 3.14e-2 * x**2.1,
            np.where(
                x < 5.7,
                5.22e-4 * z1**3.4 * x**2.1 + 0.218 * x**2.1 - 2.55e-2 * x**3.7,
                5.22e-4 * (z1**3.4 * x**2.1 - x**5.5),
            ),
        )
    # damped Lyman-α systems, eqs. (28)-(29)
    if zs < 2.0:
        dla = 0.211 * z1**2.0 - 7.66e-2 * z1**2.3 * x**-0.3 - 0.135 * x**2.0
    else:
        dla = np.where(
            x < 3.0,
            0.634 + 4.70e-2 * z1**3.0 - 1.78e-2 * z1**3.3 * x**-0.3 - 0.135 * x**2.0 - 0.291 * x**-0.3,
            4.70e-2 * z1**3.0 - 1.78e-2 * z1**3.3 * x**-0.3 - 2.92e-2 * x**3.0,
        )
    return np.where(on, laf + dla, 0.0)


def igm_transmission(rest_wave: np.ndarray, redshift: float) -> np.ndarray:
    """Mean IGM transmission at rest wavelengths (Å) for a source at ``redshift`` (0-10).

    1 redward of Lyα. A line at Lyα itself takes the transmission just blueward (1215 Å), as
    bagpipes does: the IGM absorbs at least the blue half of a line's profile.
    """
    if not 0.0 <= redshift <= MAX_REDSHIFT:
        raise ValueError(f"redshift {redshift} outside the IGM model's range 0-{MAX_REDSHIFT:g}")
    w = np.asarray(rest_wave, dtype=float)
    out = np.ones_like(w)
    blue = w <= LYA + 1e-6
    if redshift == 0 or not blue.any():
        return out
    lam_obs = np.minimum(w[blue], 1215.0) * (1.0 + redshift)
    tau = _tau_lyman_series(lam_obs, redshift) + _tau_lyman_continuum(lam_obs, redshift)
    out[blue] = np.exp(-np.clip(tau, 0.0, None))
    return out
