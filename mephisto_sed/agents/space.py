"""The search space: for every module a ladder of allowed values per parameter (the universe),
and a configuration as a choice of modules plus a subset of each ladder (indices).

The universe is usually an expert reference grid (the COSMOS team's ``pcigale.ini``) plus
optional modules the agent may add (an AGN, the other attenuation law). The full grid of the
base modules is the reference a search is measured against.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import ConfigError, Configuration
from ..sed_modules import MODULES

__all__ = ["SearchSpace", "State", "DEFAULT_OPTIONAL", "default_space"]

# Modules an agent may add when the reference grid lacks them, with their ladders.
DEFAULT_OPTIONAL: dict[str, dict[str, list[Any]]] = {
    "agn": {
        "fracAGN": [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9],
        "EBV": [0.0, 0.3, 1.0, 3.0],
        "covering_factor": [0.5],
        "temperature": [100.0],
        "emissivity": [1.6],
        "lambda_fracAGN": ["0.1/10"],
    },
    "dustatt_calzleit": {
        "E_BVs_young": [0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.5],
        "E_BVs_old_factor": [0.44, 1.0],
    },
    "dl2014": {"qpah": [2.5], "umin": [1.0], "alpha": [2.0], "gamma": [0.1]},
}
# Values an agent may try on purpose that the configuration lacks: held at the configuration's own
# value by every generic step (first look, zoom, scan, the posterior box, the reference grid), and
# set only by a rule that needs them (escaping ionising light, for flux below the Lyman limit).
HELD_VALUES: dict[str, dict[str, list[float]]] = {"nebular": {"f_esc": [0.0, 0.1, 0.2, 0.4]}}
# Category alternatives an agent may swap between.
SWAPS = {"dustatt_modified_starburst": "dustatt_calzleit", "dustatt_calzleit": "dustatt_modified_starburst"}


@dataclass(frozen=True)
class State:
    """A configuration inside the space: modules in order and ladder indices per grid parameter."""

    modules: tuple[str, ...]
    choice: tuple[tuple[str, str, tuple[int, ...]], ...]  # (module, param, sorted indices)

    def indices(self, module: str, param: str) -> tuple[int, ...]:
        for m, p, idx in self.choice:
            if m == module and p == param:
                return idx
        raise KeyError(f"{module}.{param}")

    def with_indices(self, module: str, param: str, idx: list[int] | tuple[int, ...]) -> State:
        new = tuple((m, p, tuple(sorted(set(idx))) if (m, p) == (module, param) else i) for m, p, i in self.choice)
        return State(self.modules, new)

    def within(self, other: State) -> bool:
        """Whether every model of this configuration is a model of ``other`` (same modules, each
        parameter's values a subset of the other's)."""
        if self.modules != other.modules or len(self.choice) != len(other.choice):
            return False
        theirs = {(m, p): set(idx) for m, p, idx in other.choice}
        return all((m, p) in theirs and set(idx) <= theirs[(m, p)] for m, p, idx in self.choice)

    @property
    def key(self) -> str:
        """Stable hash: the search's memory of configurations already tried."""
        text = json.dumps([self.modules, self.choice])
        return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass
class SearchSpace:
    """Ladders of allowed values per module and parameter; ``base`` modules form the reference."""

    ladders: dict[str, dict[str, list[Any]]]
    base: list[str]
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)  # single-valued and text parameters
    bands: list[str] = field(default_factory=list)
    additionalerror: float = 0.1
    held: dict[str, dict[str, int]] = field(default_factory=dict)  # {module: {param: the index held}}

    @classmethod
    def from_config(
        cls,
        config: Configuration,
        optional: dict[str, dict[str, list[Any]]] | None = None,
    ) -> SearchSpace:
        """The universe of a reference configuration, plus optional modules to add or swap in."""
        optional = DEFAULT_OPTIONAL if optional is None else optional
        ladders: dict[str, dict[str, list[Any]]] = {}
        fixed: dict[str, dict[str, Any]] = {}
        for m in config.modules:
            if not MODULES[m].computes:
                continue
            ladders[m], fixed[m] = {}, {}
            for k, v in config.params[m].items():
                spec = MODULES[m].param(k)
                if spec.grid and spec.kind is not str and v[0] is not None:
                    ladders[m][k] = sorted(v)
                else:
                    fixed[m][k] = v[0]
        held: dict[str, dict[str, int]] = {}
        for m, params in HELD_VALUES.items():
            for k, values in params.items():
                own = ladders.get(m, {}).get(k)
                if own is not None and len(own) == 1 and own[0] in values:  # the configuration fixes it
                    ladders[m][k] = sorted(values)
                    held.setdefault(m, {})[k] = ladders[m][k].index(own[0])
        for m, params in optional.items():
            if m in ladders:
                continue
            ladders[m], fixed[m] = {}, {}
            for k, v in params.items():
                spec = MODULES[m].param(k)
                if spec.grid and spec.kind is not str:
                    ladders[m][k] = sorted(v)
                else:
                    fixed[m][k] = v[0]
        base = [m for m in config.modules if MODULES[m].computes]
        return cls(ladders, base, fixed, list(config.bands), config.additionalerror, held)

    # -- states -----------------------------------------------------------------------------
    def state(self, modules: list[str], choice: dict[str, dict[str, list[int]]] | None = None) -> State:
        """A state with the given modules; parameters not in ``choice`` take their whole ladder
        (a held parameter its held value)."""
        choice = choice or {}
        items = []
        for m in modules:
            if m not in self.ladders:
                raise ConfigError(f"module {m!r} is not in the search space")
            for p, ladder in self.ladders[m].items():
                default = [self.held[m][p]] if p in self.held.get(m, {}) else list(range(len(ladder)))
                idx = choice.get(m, {}).get(p, default)
                if not idx or min(idx) < 0 or max(idx) >= len(ladder):
                    raise ConfigError(f"{m}.{p}: indices {idx} outside its ladder of {len(ladder)}")
                items.append((m, p, tuple(sorted(set(int(i) for i in idx)))))
        return State(tuple(modules), tuple(items))

    def is_held(self, state: State, module: str, param: str) -> bool:
        """Whether ``module.param`` is a held parameter still at its held value in ``state``."""
        i = self.held.get(module, {}).get(param)
        return i is not None and state.indices(module, param) == (i,)

    def reference_state(self) -> State:
        return self.state(self.base)

    def values(self, state: State, module: str, param: str) -> list[Any]:
        ladder = self.ladders[module][param]
        return [ladder[i] for i in state.indices(module, param)]

    def size(self, state: State) -> int:
        return int(np.prod([len(idx) for _, _, idx in state.choice]))

    def to_config(self, state: State) -> Configuration:
        """The engine configuration of a state (validated against the modules' bounds)."""
        mods: dict[str, dict[str, Any]] = {}
        for m in state.modules:
            mods[m] = dict(self.fixed.get(m, {}))
        for m, p, idx in state.choice:
            mods[m][p] = [self.ladders[m][p][i] for i in idx]
        if "redshifting" not in mods:
            mods["redshifting"] = {"redshift": ""}
        from ..config import ordered

        names = ordered(list(mods))
        return Configuration.from_modules(
            {m: mods[m] for m in names}, bands=list(self.bands), additionalerror=self.additionalerror
        )

    def nearest_index(self, module: str, param: str, value: Any) -> int:
        ladder = np.asarray(self.ladders[module][param], dtype=float)
        return int(np.argmin(np.abs(ladder - float(value))))


def default_space() -> SearchSpace:
    """A broad universe for sources without an expert grid: the COSMOS team's choices, wider."""
    cfg = Configuration.from_modules(
        {
            "sfhdelayed": {
                "tau_main": [50.0, 100.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 2000.0, 4000.0, 8000.0],
                "age_main": [
                    20.0,
                    50.0,
                    100.0,
                    200.0,
                    400.0,
                    600.0,
                    800.0,
                    1000.0,
                    1500.0,
                    2000.0,
                    3000.0,
                    5000.0,
                    8000.0,
                    12000.0,
                ],
                "tau_burst": [5.0, 50.0, 100.0],
                "age_burst": [5.0, 20.0, 50.0],
                "f_burst": [0.0, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9],
            },
            "bc03": {"imf": 1, "metallicity": [0.0004, 0.004, 0.008, 0.02, 0.05]},
            "nebular": {"logU": [round(-4.0 + 0.2 * i, 1) for i in range(16)], "zgas": [0.0004, 0.004, 0.02, 0.051]},
            "dustatt_modified_starburst": {
                "E_BV_lines": [
                    0.0,
                    0.025,
                    0.05,
                    0.075,
                    0.1,
                    0.2,
                    0.3,
                    0.4,
                    0.5,
                    0.6,
                    0.7,
                    0.8,
                    0.9,
                    1.0,
                    1.5,
                    2.0,
                    3.0,
                ],
                "E_BV_factor": 0.44,
            },
            "dl2014": {"qpah": 2.5, "umin": 1.0, "alpha": 2.0, "gamma": 0.1},
            "redshifting": {"redshift": ""},
        }
    )
    return SearchSpace.from_config(cfg)
