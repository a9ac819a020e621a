"""CIGALE's ``sfhdelayedbq`` (Ciesla et al. 2017): a delayed SFH, SFR ∝ t exp(−t/τ), whose last
``age_bq`` Myr form stars at a constant ``r_sfr`` times the SFR reached just before: a recent
quenching (r_sfr < 1) or rejuvenation (r_sfr > 1). Declaration, physics and grid entry in one file.
"""

from __future__ import annotations

import numpy as np

from .base import ModuleSpec, Param, SFHModel

SPEC = ModuleSpec(
    "sfhdelayedbq",
    "sfh",
    "Delayed SFH, SFR ∝ t exp(-t/tau_main), with a constant SFR of r_sfr times the SFR before it over "
    "the last age_bq Myr: a recent quenching (r_sfr < 1) or burst (r_sfr > 1), as in Ciesla et al. (2017).",
    (
        Param("tau_main", "e-folding time of the main population in Myr.", 2000.0, bounds=(1, 1e5)),
        Param("age_main", "Age of the main population in Myr.", 5000.0, bounds=(1, 14000)),
        Param(
            "age_bq", "Time since the quenching or burst began, in Myr (less than age_main).", 500.0, bounds=(1, 14000)
        ),
        Param("r_sfr", "Ratio of the SFR after the episode began to the SFR just before it.", 0.1, bounds=(0, 1e3)),
        Param("sfr_A", "SFR multiplier when normalise is False.", 1.0, bounds=(0, 1e6)),
        Param("normalise", "Normalise the SFH to one solar mass formed.", True, kind=bool, grid=False),
    ),
)


def _cumulative(t: np.ndarray, tau: np.ndarray, t_bq: np.ndarray, r_sfr: np.ndarray) -> np.ndarray:
    """Mass formed from the onset to time ``t`` (Myr, unnormalised: SFR(t) = t exp(−t/τ) before
    ``t_bq``, then r_sfr × t_bq exp(−t_bq/τ))."""
    t = np.maximum(t, 0.0)
    before = np.minimum(t, t_bq)
    delayed = tau**2 - tau * (before + tau) * np.exp(-before / tau)
    return delayed + r_sfr * t_bq * np.exp(-t_bq / tau) * np.maximum(t - t_bq, 0.0)


def mass(
    tau_main: np.ndarray, age_main: np.ndarray, age_bq: np.ndarray, r_sfr: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Mass per lookback-age bin [n_sfh, n_bins] for one solar mass formed, and the SFRs."""
    tau, age, bq, r = (np.asarray(x, dtype=float) for x in np.broadcast_arrays(tau_main, age_main, age_bq, r_sfr))
    t_bq = age - bq  # time since onset when the episode began
    col = (tau[:, None], age[:, None], t_bq[:, None], r[:, None])
    total = _cumulative(age, tau, t_bq, r)

    def formed(t: np.ndarray) -> np.ndarray:
        return _cumulative(t, col[0], col[2], col[3])

    t_young = np.minimum(col[1] - edges[None, :-1], col[1])  # time since onset at each bin's young edge
    t_old = np.minimum(col[1] - edges[None, 1:], col[1])
    per_bin = (formed(t_young) - formed(t_old)) / total[:, None]
    now = np.where(bq > 0, r * t_bq * np.exp(-t_bq / tau), age * np.exp(-age / tau))
    info = {"sfr": now / total / 1e6}
    for key, window in (("sfr10Myrs", 10.0), ("sfr100Myrs", 100.0)):
        info[key] = (total - _cumulative(age - window, tau, t_bq, r)) / total / (window * 1e6)
    return per_bin, info


MODEL = SFHModel(
    table=("tau_main", "age_main", "age_bq", "r_sfr"),
    age="age_main",
    mass=mass,
    valid=lambda row: row["age_bq"] < row["age_main"],  # the episode starts after the onset
)
