"""Star-formation histories as mass formed per stellar-age bin, computed analytically.

Every function takes parameter arrays (one entry per SFH model, times in Myr) and the
age-bin edges in Myr, and returns the mass formed in each bin for one solar mass formed in
total (CIGALE's ``normalise = True``), plus the SFRs CIGALE reports, in M☉/yr per M☉ formed.
"""

from __future__ import annotations

import numpy as np


def _delayed_cum(t: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """∫_0^t t' exp(-t'/τ) dt' (zero for t ≤ 0)."""
    t = np.maximum(t, 0.0)
    return tau**2 - tau * (t + tau) * np.exp(-t / tau)


def _exp_cum(t: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """∫_0^t exp(-t'/τ) dt' (zero for t ≤ 0)."""
    t = np.maximum(t, 0.0)
    return tau * -np.expm1(-t / tau)


def _bins(cum, age, tau, edges):
    """Mass formed in lookback-age bins [edges[i], edges[i+1]] for a history of total age ``age``."""
    age = age[:, None]
    tau = tau[:, None]
    t_hi = age - edges[None, :-1]  # time since onset at the young edge of each bin
    t_lo = age - edges[None, 1:]
    total = cum(age, tau)
    return (cum(np.minimum(t_hi, age), tau) - cum(np.minimum(t_lo, age), tau)) / total


def _mean_sfr(cum, age, tau, window_myr):
    """Mean SFR over the last ``window_myr`` in M☉/yr per M☉ formed (window 0 = instantaneous)."""
    total = cum(age, tau)
    if window_myr == 0:
        return None
    return (cum(age, tau) - cum(age - window_myr, tau)) / total / (window_myr * 1e6)


def sfhdelayed(tau_main, age_main, tau_burst, age_burst, f_burst, edges):
    """Delayed SFH (SFR ∝ t exp(-t/τ)) plus an exponential burst of mass fraction f_burst.

    Returns ``(mass_per_bin [n, n_bins], info)`` with ``info`` holding ``sfr``, ``sfr10Myrs``,
    ``sfr100Myrs`` (M☉/yr per M☉ formed) and the parameters.
    """
    tau_main, age_main, tau_burst, age_burst, f_burst = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (tau_main, age_main, tau_burst, age_burst, f_burst))
    )
    age_burst = np.minimum(age_burst, age_main)
    main = _bins(_delayed_cum, age_main, tau_main, edges)
    burst = _bins(_exp_cum, age_burst, tau_burst, edges)
    fb = f_burst[:, None]
    mass = (1 - fb) * main + fb * burst
    info = {}
    for key, window in (("sfr10Myrs", 10.0), ("sfr100Myrs", 100.0)):
        info[key] = (1 - f_burst) * _mean_sfr(_delayed_cum, age_main, tau_main, window) + f_burst * _mean_sfr(
            _exp_cum, age_burst, tau_burst, window
        )
    inst_main = age_main * np.exp(-age_main / tau_main) / _delayed_cum(age_main, tau_main)
    inst_burst = np.exp(-age_burst / tau_burst) / _exp_cum(age_burst, tau_burst)
    info["sfr"] = ((1 - f_burst) * inst_main + f_burst * inst_burst) / 1e6
    return mass, info


def sfh2exp(tau_main, age, tau_burst, burst_age, f_burst, edges):
    """Double decreasing exponential: a main population and a late burst of mass fraction f_burst."""
    tau_main, age, tau_burst, burst_age, f_burst = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (tau_main, age, tau_burst, burst_age, f_burst))
    )
    burst_age = np.minimum(burst_age, age)
    main = _bins(_exp_cum, age, tau_main, edges)
    burst = _bins(_exp_cum, burst_age, tau_burst, edges)
    fb = f_burst[:, None]
    mass = (1 - fb) * main + fb * burst
    info = {}
    for key, window in (("sfr10Myrs", 10.0), ("sfr100Myrs", 100.0)):
        info[key] = (1 - f_burst) * _mean_sfr(_exp_cum, age, tau_main, window) + f_burst * _mean_sfr(
            _exp_cum, burst_age, tau_burst, window
        )
    inst_main = np.exp(-age / tau_main) / _exp_cum(age, tau_main)
    inst_burst = np.exp(-burst_age / tau_burst) / _exp_cum(burst_age, tau_burst)
    info["sfr"] = ((1 - f_burst) * inst_main + f_burst * inst_burst) / 1e6
    return mass, info
