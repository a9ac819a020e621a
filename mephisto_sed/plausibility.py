"""Physical plausibility of a fit's estimates: warnings an astronomer should read beside the numbers.

A plausibility rule alone is a warning, not an anomaly: the grid and the agents both report these
in a ``warnings`` column. The sSFR rule is judged on the 10 Myr average SFR (``sfh.sfr10Myrs``,
what Hα or the UV measure), since the instantaneous SFR of a burst a few Myr old can exceed it
tenfold while the galaxy doubles its mass over no physical time-scale at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .photometry import age_of_universe_myr
from .sed_modules import SFH_MODELS

__all__ = ["implausibilities", "estimate_warnings", "MAX_SSFR_PER_YR", "BURST_SFR_RATIO"]

MAX_SSFR_PER_YR = 1e-7  # mass doubling in < 10 Myr
BURST_SFR_RATIO = 5.0  # instantaneous / 100 Myr SFR above which the instantaneous value misleads


def _get(values: dict[str, float], *keys: str) -> float:
    for k in keys:
        v = values.get(k)
        if v is not None and np.isfinite(v):
            return float(v)
    return float("nan")


def implausibilities(values: dict[str, float], best_model: dict[str, dict[str, Any]], z: float) -> list[str]:
    """Estimates no physical galaxy has. ``values`` holds ``stellar.m_star``, ``sfh.sfr10Myrs``...
    (``bayes.`` prefixes stripped); ``best_model`` is {module: {parameter: value}}."""
    out = []
    mass = _get(values, "stellar.m_star")
    if np.isfinite(mass) and mass > 0:
        logm = np.log10(mass)
        if logm > 12.5:
            out.append(f"stellar mass 10^{logm:.1f} Msun is implausibly high")
        if logm < 6:
            out.append(f"stellar mass 10^{logm:.1f} Msun is implausibly low for a detected galaxy")
        sfr10 = _get(values, "sfh.sfr10Myrs", "sfh.sfr")
        if np.isfinite(sfr10) and sfr10 / mass > MAX_SSFR_PER_YR:
            out.append(
                f"sSFR over 10 Myr {sfr10 / mass:.1e}/yr exceeds {MAX_SSFR_PER_YR:g}/yr (mass doubling in <10 Myr)"
            )
    age = next((best_model[m].get(model.age) for m, model in SFH_MODELS.items() if m in best_model), None)
    if age is not None and age > age_of_universe_myr(z):
        out.append(f"age {age:.0f} Myr exceeds the age of the Universe at z={z:.2f}")
    return out


def estimate_warnings(values: dict[str, float], best_model: dict[str, dict[str, Any]], z: float) -> list[str]:
    """:func:`implausibilities` plus notes on how to read the estimates (a young burst's SFR)."""
    out = implausibilities(values, best_model, z)
    sfr, sfr100 = _get(values, "sfh.sfr"), _get(values, "sfh.sfr100Myrs")
    if np.isfinite(sfr) and np.isfinite(sfr100) and sfr100 > 0 and sfr > BURST_SFR_RATIO * sfr100:
        out.append(
            f"instantaneous SFR {sfr:.3g} Msun/yr is {sfr / sfr100:.0f}x the 100 Myr average ({sfr100:.3g}): "
            "a burst of a few Myr; quote sfh.sfr10Myrs or sfh.sfr100Myrs"
        )
    return out
