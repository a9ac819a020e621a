"""CIGALE's ``sfh2exp``: a decreasing exponential main population and a late exponential burst."""

from __future__ import annotations

from ..physics import sfh
from .base import ModuleSpec, Param, SFHModel

SPEC = ModuleSpec(
    "sfh2exp",
    "sfh",
    "Double decreasing exponential SFH: a main population and a late burst.",
    (
        Param("tau_main", "e-folding time of the main population in Myr.", 6000.0, bounds=(1, 1e5)),
        Param("tau_burst", "e-folding time of the late burst in Myr.", 50.0, bounds=(1, 1e5)),
        Param("f_burst", "Mass fraction of the late burst population.", 0.01, bounds=(0, 0.99)),
        Param("burst_age", "Age of the late burst in Myr.", 20.0, bounds=(1, 14000)),
        Param("age", "Age of the main population in Myr.", 5000.0, bounds=(1, 14000)),
        Param("sfr_0", "SFR at t=0 when normalise is False.", 1.0, bounds=(0, 1e6)),
        Param("normalise", "Normalise the SFH to one solar mass formed.", True, kind=bool, grid=False),
    ),
)

MODEL = SFHModel(
    table=("tau_main", "age", "tau_burst", "burst_age", "f_burst"),
    age="age",
    mass=sfh.sfh2exp,
    burst=("f_burst", "tau_burst", "burst_age"),
)
