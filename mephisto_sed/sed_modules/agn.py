"""Mephisto's ``agn`` module (the physics in ``physics/agn.py``)."""

from __future__ import annotations

from .base import ModuleSpec, Param

SPEC = ModuleSpec(
    "agn",
    "agn",
    "Mephisto's AGN: Schartmann+05 accretion disk, hot-dust torus (1500-200 K), polar dust "
    "(SMC extinction of the disk re-emitted as a grey body); see docs/physics.md.",
    (
        Param("fracAGN", "AGN fraction of the luminosity in lambda_fracAGN.", 0.1, bounds=(0, 0.99)),
        Param(
            "lambda_fracAGN",
            "Rest-frame range 'min/max' in µm where fracAGN is defined; '0/0' means the dust luminosity.",
            "0/0",
            kind=str,
            grid=False,
        ),
        Param(
            "covering_factor",
            "Fraction of the disk luminosity reprocessed by the torus.",
            0.5,
            bounds=(0.0, 1.0),
        ),
        Param("EBV", "E(B-V) of polar dust in front of the disk (SMC law).", 0.0, bounds=(0, 10)),
        Param("temperature", "Polar dust temperature in K.", 100.0, bounds=(30, 2000)),
        Param("emissivity", "Polar dust emissivity index beta.", 1.6, bounds=(0, 3)),
    ),
)
