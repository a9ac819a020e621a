"""CIGALE's ``dustatt_modified_starburst``: the Calzetti (2000) curve (Leitherer 2002 below 150 nm)
with a UV bump and a power law for the stars; the nebular emission through a Milky Way, LMC or SMC
law. Declaration and transmission in one file."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..physics.attenuation import line_law
from .base import AttenuationModel, ModuleSpec, Param
from .starburst_bump import BUMP, modified_curve

SPEC = ModuleSpec(
    "dustatt_modified_starburst",
    "attenuation",
    "Calzetti (2000) starburst curve (Leitherer 2002 below 150 nm) modified by a UV bump and a "
    "power law; nebular emission attenuated with a Milky Way, LMC or SMC law.",
    (
        Param("E_BV_lines", "E(B-V) of the nebular lines in mag.", 0.3, bounds=(0, 5)),
        Param(
            "E_BV_factor",
            "Reduction factor: E(B-V) of the stellar continuum over E_BV_lines.",
            0.44,
            bounds=(0, 1),
        ),
        *BUMP[:4],
        Param(
            "Ext_law_emission_lines",
            "Law for the lines: 1 MW (Cardelli+89), 2 LMC, 3 SMC (Pei 1992).",
            1,
            kind=int,
            choices=(1, 2, 3),
        ),
        Param("Rv", "R_V of the Milky Way law for the lines.", 3.1, bounds=(2, 6)),
        BUMP[4],
    ),
)


def transmission(att: dict[str, Any], wave_aa: np.ndarray, line_wave: np.ndarray) -> tuple[Any, ...]:
    """``(young stars, old stars, nebular continuum, lines, E(B-V) stars, E(B-V) lines)``."""
    curve = modified_curve(att, wave_aa / 10.0)
    ebv_lines = att["E_BV_lines"]
    ebv_s = ebv_lines * att["E_BV_factor"]
    t_star = 10 ** (-0.4 * ebv_s * curve)
    law, rv = int(att["Ext_law_emission_lines"]), att["Rv"]
    t_nc = 10 ** (-0.4 * ebv_lines * line_law(wave_aa / 10.0, law, rv))
    t_l = 10 ** (-0.4 * ebv_lines * line_law(line_wave / 10.0, law, rv))
    return t_star, t_star, t_nc, t_l, ebv_s, ebv_lines


MODEL = AttenuationModel(colour_excess="E_BV_lines", transmission=transmission)
