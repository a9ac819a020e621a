"""CIGALE's ``redshifting``: the redshift and the IGM."""

from __future__ import annotations

from .base import MAX_REDSHIFTS, ModuleSpec, Param

SPEC = ModuleSpec(
    "redshifting",
    "redshifting",
    "Redshifting and Inoue (2014) IGM absorption; empty redshift = the catalogue's.",
    (
        Param(
            "redshift",
            "Redshift; empty to use each source's. Several: the redshifts of photometric redshifts "
            "for sources without one.",
            None,
            bounds=(0, 10),
            max_values=MAX_REDSHIFTS,
        ),
    ),
)
