"""CIGALE's ``sfhdelayed``: SFR ∝ t exp(−t/τ), with an optional exponential late burst."""

from __future__ import annotations

from ..physics import sfh
from .base import ModuleSpec, Param, SFHModel

SPEC = ModuleSpec(
    "sfhdelayed",
    "sfh",
    "Delayed SFH, SFR ∝ t exp(-t/tau_main), with an optional exponential late burst.",
    (
        Param("tau_main", "e-folding time of the main population in Myr.", 2000.0, bounds=(1, 1e5)),
        Param("age_main", "Age of the main population in Myr.", 5000.0, bounds=(1, 14000)),
        Param("tau_burst", "e-folding time of the late burst in Myr.", 50.0, bounds=(1, 1e5)),
        Param("age_burst", "Age of the late burst in Myr.", 20.0, bounds=(1, 14000)),
        Param("f_burst", "Mass fraction of the late burst population.", 0.0, bounds=(0, 0.99)),
        Param("sfr_A", "SFR multiplier when normalise is False.", 1.0, bounds=(0, 1e6)),
        Param("normalise", "Normalise the SFH to one solar mass formed.", True, kind=bool, grid=False),
    ),
)

MODEL = SFHModel(
    table=("tau_main", "age_main", "tau_burst", "age_burst", "f_burst"),
    age="age_main",
    mass=sfh.sfhdelayed,
    burst=("f_burst", "tau_burst", "age_burst"),
)
