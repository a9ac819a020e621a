"""CIGALE's ``restframe_parameters``: accepted, not computed."""

from __future__ import annotations

from .base import ModuleSpec

SPEC = ModuleSpec(
    "restframe_parameters",
    "restframe",
    "Rest-frame quantities (accepted for compatibility; not computed by the built-in engine).",
    (),
    computes=False,
)
