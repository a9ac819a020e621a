"""The building blocks of a module's declaration: its parameters (:class:`Param`), the module
(:class:`ModuleSpec`) and, for a star formation history, how it enters the model grid
(:class:`SFHModel`). Each module declares itself in its own file of this package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_VALUES = 64  # values per parameter: keeps every ladder the agents walk short (CIGALE grids use < 20)
MAX_REDSHIFTS = 1_000  # a photo-z redshift list (each value costs one grid, checked as models in all)


class ConfigError(ValueError):
    """An invalid configuration: the message names the module and the parameter."""


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    default: Any
    kind: type = float
    bounds: tuple[float, float] | None = None
    choices: tuple[Any, ...] | None = None
    grid: bool = True  # may hold several values (a grid axis)
    max_values: int | None = None  # more values than MAX_VALUES allowed (a photo-z redshift list)


@dataclass(frozen=True)
class ModuleSpec:
    name: str
    category: str
    description: str
    params: tuple[Param, ...] = field(default_factory=tuple)
    computes: bool = True  # False: accepted for compatibility, outputs not computed
    # the grid parameters in the order their combinations enter the model grid (the order models
    # are made in); None: the declaration's order
    axes: tuple[str, ...] | None = None

    def grid_axes(self) -> tuple[str, ...]:
        return self.axes if self.axes is not None else tuple(p.name for p in self.params if p.grid)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


SFHMass = Callable[..., tuple[np.ndarray, dict[str, np.ndarray]]]


@dataclass(frozen=True)
class SFHModel:
    """How a star formation history enters the grid. ``mass(*table values, age-bin edges in Myr)``
    returns the mass formed per stellar-age bin for one solar mass formed (rows: SFHs) and its
    SFRs (``sfr``, ``sfr10Myrs``, ``sfr100Myrs``, M☉/yr per M☉ formed)."""

    table: tuple[str, ...]  # the parameters that make one history, in the order ``mass`` takes them
    age: str  # the one among them that is the time since the onset of star formation (Myr)
    mass: SFHMass
    # (amplitude, shape...): with a zero amplitude the shape parameters change nothing, so the
    # grid keeps one copy of those histories (CIGALE computes them all)
    burst: tuple[str, ...] = ()
    valid: Callable[[dict[str, float]], bool] = lambda _row: True  # histories that are not models


AttenuationTransmission = Callable[[dict[str, Any], np.ndarray, np.ndarray], tuple[Any, ...]]


@dataclass(frozen=True)
class AttenuationModel:
    """How an attenuation law enters the grid. ``transmission(params, wavelengths Å, line
    wavelengths Å)`` returns the transmissions of young stars, old stars, the nebular continuum and
    the lines, and the stellar and line E(B-V)."""

    colour_excess: str  # the parameter the agents move to add or remove dust
    transmission: AttenuationTransmission
