"""The one validation of observed photometry, shared by catalogue readers (CLI), the gateway and
the alert stream: what a band and a source must be before any model is fitted to them.

Limits: no galaxy is brighter than 10⁹ mJy (10⁶ Jy) in any band; no error is below 10⁻¹⁵ mJy
(the deepest JWST errors are ~10⁻⁶ mJy; mocks with σ = flux/SNR on a dropout band come near
10⁻¹¹), and the IGM tables end at z = 10. Values beyond them (1e300, the subnormal 5e-324)
made χ² infinite and estimates NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .physics.igm import MAX_REDSHIFT

__all__ = ["MAX_ABS_FLUX_MJY", "MAX_REDSHIFT", "MIN_DETECTIONS", "MIN_ERROR_MJY", "band_problem", "source_problem"]

MAX_ABS_FLUX_MJY = 1e9
MIN_ERROR_MJY = 1e-15
MIN_DETECTIONS = 2  # a reduced χ² needs more detections than free parameters (the scale)


def band_problem(flux_mjy: float, error_mjy: float) -> tuple[str, str] | None:
    """What is wrong with one measured band, as (field, reason): field is ``flux`` or ``error``;
    None when it is usable. A missing band is left out before this check, never passed as NaN."""
    if not math.isfinite(flux_mjy):
        return "flux", f"{flux_mjy} is not finite (leave a missing band out)"
    if abs(flux_mjy) > MAX_ABS_FLUX_MJY:
        return "flux", f"{flux_mjy:g} mJy is beyond ±{MAX_ABS_FLUX_MJY:g} mJy"
    if not math.isfinite(error_mjy) or error_mjy <= 0:
        return "error", f"{error_mjy} must be finite and > 0"
    if error_mjy < MIN_ERROR_MJY:
        return "error", f"{error_mjy:g} mJy is below {MIN_ERROR_MJY:g} mJy"
    if error_mjy > MAX_ABS_FLUX_MJY:
        return "error", f"{error_mjy:g} mJy is beyond {MAX_ABS_FLUX_MJY:g} mJy"
    return None


def source_problem(
    redshift: float, fluxes: Sequence[float], upper_limits: Sequence[bool], photoz: bool = False
) -> tuple[str, str] | None:
    """What is wrong with a source whose bands each passed :func:`band_problem`, as (field,
    reason): field is ``redshift`` or ``bands``; None when it can be fitted. With ``photoz`` a
    missing (NaN) or negative redshift (CIGALE's convention) asks for a photometric redshift."""
    if photoz and (math.isnan(redshift) or redshift < 0):
        pass
    elif math.isnan(redshift):
        return "redshift", "missing (the agents need a redshift; `mephisto-sed grid` finds a photometric one)"
    elif not 0.0 <= redshift <= MAX_REDSHIFT:
        return "redshift", f"{redshift} is not in [0, {MAX_REDSHIFT:g}] (the IGM tables end at z = {MAX_REDSHIFT:g})"
    detected = [f for f, ul in zip(fluxes, upper_limits, strict=True) if not ul]
    if len(detected) < MIN_DETECTIONS:
        return "bands", f"{len(detected)} detections, at least {MIN_DETECTIONS} needed"
    if not any(f > 0 for f in detected):
        return "bands", "no detection has a positive flux"
    return None
