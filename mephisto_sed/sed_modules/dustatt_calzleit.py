"""CIGALE's ``dustatt_calzleit``: the Calzetti (2000) + Leitherer (2002) curve with a UV bump and a
power law, a separate E(B-V) for young and old stars; lines and nebular continuum as the young
stars. Declaration and transmission in one file."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import AttenuationModel, ModuleSpec, Param
from .starburst_bump import BUMP, modified_curve

SPEC = ModuleSpec(
    "dustatt_calzleit",
    "attenuation",
    "Calzetti (2000) + Leitherer (2002) curve with separate young and old E(B-V).",
    (
        Param("E_BVs_young", "E(B-V) of the young stellar continuum in mag.", 0.3, bounds=(0, 5)),
        Param("E_BVs_old_factor", "Ratio of the old to the young E(B-V).", 1.0, bounds=(0, 1)),
        *BUMP,
    ),
)


def transmission(att: dict[str, Any], wave_aa: np.ndarray, line_wave: np.ndarray) -> tuple[Any, ...]:
    """``(young stars, old stars, nebular continuum, lines, E(B-V) stars, E(B-V) lines)``."""
    curve = modified_curve(att, wave_aa / 10.0)
    ebv_y = att["E_BVs_young"]
    ebv_o = ebv_y * att["E_BVs_old_factor"]
    t_y = 10 ** (-0.4 * ebv_y * curve)
    t_o = 10 ** (-0.4 * ebv_o * curve)
    return t_y, t_o, t_y, 10 ** (-0.4 * ebv_y * modified_curve(att, line_wave / 10.0)), ebv_y, ebv_y


MODEL = AttenuationModel(colour_excess="E_BVs_young", transmission=transmission)
