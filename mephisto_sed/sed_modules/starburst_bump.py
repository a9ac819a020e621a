"""The parameters CIGALE's starburst-curve attenuation modules share: the UV bump and the
power-law modification of the curve (and the filters CIGALE reports attenuation in)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..physics.attenuation import starburst_curve
from .base import Param

BUMP = (
    Param("uv_bump_wavelength", "Central wavelength of the UV bump in nm.", 217.5, bounds=(150, 300)),
    Param("uv_bump_width", "Width (FWHM) of the UV bump in nm.", 35.0, bounds=(1, 100)),
    Param("uv_bump_amplitude", "Amplitude of the UV bump (Milky Way: 3).", 0.0, bounds=(0, 10)),
    Param("powerlaw_slope", "Slope delta of the power law modifying the curve.", 0.0, bounds=(-3, 3)),
    Param("filters", "Filters for which attenuation is reported (accepted, not computed).", "", kind=str, grid=False),
)


def modified_curve(att: dict[str, Any], wave_nm: np.ndarray) -> np.ndarray:
    """The starburst curve with this module's bump and slope, at ``wave_nm``."""
    return starburst_curve(
        wave_nm, att["uv_bump_wavelength"], att["uv_bump_width"], att["uv_bump_amplitude"], att["powerlaw_slope"]
    )
