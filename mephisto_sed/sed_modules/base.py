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


@dataclass(frozen=True)
class SSPModel:
    """How a stellar-population library enters the grid. ``populations(metallicity)`` returns the
    SSP spectra [age, λ] in L☉/Å per M☉ formed on the engine's rest-frame grid, the mass in living
    stars and remnants per age, and the ionising photons per age (photons/s per M☉ formed)."""

    populations: Callable[[float], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class NebularModel:
    """How nebular emission enters the grid. ``templates(logU, zgas)`` returns the continuum
    [nebular age, λ] (L☉/Å) and the lines [nebular age, line] (L☉), both per ionising photon/s;
    ``lines_kept(module parameters)`` is 1 for every line the models include, 0 for one left out.
    The engine scales them by each population's ionising photons times 1 − f_esc − f_dust."""

    templates: Callable[[float, float], tuple[np.ndarray, np.ndarray]]
    lines_kept: Callable[[dict[str, list[Any]]], np.ndarray]


@dataclass(frozen=True)
class DustEmissionModel:
    """How dust emission enters the grid by energy balance. ``template(parameters)`` returns
    ``(rest Å, L_λ)`` normalised to unit luminosity; the engine scales it by the luminosity the
    attenuation absorbed."""

    template: Callable[[dict[str, Any]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class AGNModel:
    """How an AGN enters the grid. ``components(parameters, rest Å)`` returns its L_λ components
    normalised to unit AGN dust luminosity; ``window(module parameters)`` the rest-frame range in µm
    where ``fraction`` is defined, or None for the dust luminosity."""

    components: Callable[[dict[str, Any], np.ndarray], dict[str, np.ndarray]]
    window: Callable[[dict[str, list[Any]]], tuple[float, float] | None]
    fraction: str  # the parameter: AGN share of the luminosity in the window
