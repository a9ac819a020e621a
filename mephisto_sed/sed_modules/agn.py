"""Mephisto's ``agn`` module: declaration and how it enters the grid (the physics in
``physics/agn.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import AGNModel, ConfigError, ModuleSpec, Param

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


def components(agn: dict[str, Any], wave: np.ndarray) -> dict[str, np.ndarray]:
    """Disk, torus and polar dust L_λ on ``wave`` (Å), normalised to unit AGN dust luminosity."""
    from ..physics.agn import agn_components

    return agn_components(wave, agn["covering_factor"], agn["EBV"], agn["temperature"], agn["emissivity"])


def window(params: dict[str, list[Any]]) -> tuple[float, float] | None:
    """``lambda_fracAGN`` as (min, max) µm, or None where fracAGN is a share of the dust luminosity."""
    text = params["lambda_fracAGN"][0].strip()
    try:
        lo, hi = (float(x) for x in text.split("/"))
    except ValueError as exc:
        raise ConfigError(f"agn.lambda_fracAGN: {text!r} is not 'min/max' in µm") from exc
    if lo == 0 and hi == 0:
        return None
    if not 0 < lo < hi:
        raise ConfigError(f"agn.lambda_fracAGN: {text!r} needs 0 < min < max")
    return lo, hi


MODEL = AGNModel(components=components, window=window, fraction="fracAGN")
