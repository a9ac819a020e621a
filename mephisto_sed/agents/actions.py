"""Actions that change a configuration, as plain data (JSON), and their validation.

Every action — from the expert policy or from an LLM — is parsed against a closed schema,
checked against the search space's allow-list (modules, parameters, ladder values) and a
grid-size cap, and only then turned into a new state. Nothing in an action is ever executed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from ..sed_modules import MODULES, ConfigError
from .action_schema import ACTION_SCHEMA, ACTION_TYPES, ActionModel, validation_message
from .space import SWAPS, SearchSpace, State

__all__ = ["Action", "ActionError", "ACTION_TYPES", "apply_action", "parse_action", "ACTION_SCHEMA"]

DEFAULT_MAX_MODELS = 50_000
NEW_COMPONENT_MODELS = 20_000  # a new module is tried around the best model at most this wide
_REQUIRED_MODULES = {"sfh", "ssp", "redshifting"}


class ActionError(ValueError):
    """An action that is malformed, outside the allow-list or bounds, or too large."""


@dataclass(frozen=True)
class Action:
    type: str
    module: str | None = None
    param: str | None = None
    to: str | None = None
    direction: str | None = None
    steps: int = 1
    width: int = 1
    values: tuple[float, ...] = ()
    around: tuple[tuple[str, float], ...] = ()  # zoom centre: ("module.param", value) pairs
    couple: tuple[str, ...] = ()  # scan: "module.param" names kept at best ± width (the rest at best)
    rationale: str = field(default="", compare=False)
    rule: str = field(default="", compare=False)  # which expert rule or knowledge entry proposed it
    width_zero: bool = field(default=False, compare=False, repr=False)  # internal: neighbourhood already chosen

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if v not in (None, (), "") and k != "width_zero"}
        d["values"] = list(self.values) if self.values else d.pop("values", None)
        d["around"] = dict(self.around) if self.around else d.pop("around", None)
        d["couple"] = list(self.couple) if self.couple else d.pop("couple", None)
        return {k: v for k, v in d.items() if v is not None}

    def describe(self) -> str:
        target = ".".join(x for x in (self.module, self.param) if x)
        extra = f" {self.direction}" if self.direction else ""
        extra += f" -> {self.to}" if self.to else ""
        extra += f" {list(self.values)}" if self.values else ""
        extra += " around " + ", ".join(f"{k}={v:g}" for k, v in self.around) if self.around else ""
        extra += " with " + ", ".join(self.couple) + f" ±{self.width}" if self.couple else ""
        return f"{self.type} {target}{extra}".strip()


def parse_action(data: Any) -> Action:
    """Strictly parse one action from JSON-like data (an LLM's output is data, never code), against
    the one typed definition of an action, ``action_schema.ActionModel``."""
    if not isinstance(data, dict):
        raise ActionError(f"an action must be an object, got {type(data).__name__}")
    try:
        m = ActionModel.model_validate(data)
    except ValidationError as exc:
        raise ActionError(validation_message(exc)) from None
    return Action(
        type=m.type,
        module=m.module,
        param=m.param,
        to=m.to,
        direction=m.direction,
        steps=m.steps,
        width=m.width,
        values=tuple(float(v) for v in m.values),
        around=tuple(sorted((k, float(v)) for k, v in m.around.items())),
        couple=tuple(m.couple),
        rationale=m.rationale,
    )


def _need(action: Action, *fields: str) -> None:
    for f in fields:
        if getattr(action, f) in (None, ""):
            raise ActionError(f"{action.type} needs '{f}'")


def _check_param(space: SearchSpace, state: State, module: str, param: str) -> list[Any]:
    if module not in state.modules:
        raise ActionError(f"module {module!r} is not in the current configuration")
    if param not in space.ladders.get(module, {}):
        raise ActionError(f"{module}.{param} is not a searchable parameter")
    return space.ladders[module][param]


def apply_action(
    space: SearchSpace,
    state: State,
    action: Action,
    best: dict[str, dict[str, Any]],
    max_models: int = DEFAULT_MAX_MODELS,
) -> State:
    """The state ``action`` leads to from ``state`` (given the current best model), validated."""
    new = _apply(space, state, action, best)
    if new == state:
        raise ActionError(f"{action.describe()} changes nothing")
    try:
        space.to_config(new)  # module and parameter bounds, required categories
    except ConfigError as exc:
        raise ActionError(str(exc)) from exc
    size = space.size(new)
    if size > max_models:
        raise ActionError(f"{action.describe()} gives {size:,} models, over the cap of {max_models:,}")
    return new


def _best_index(space: SearchSpace, state: State, best: dict[str, dict[str, Any]], m: str, p: str) -> int:
    value = best.get(m, {}).get(p)
    idx = state.indices(m, p)
    if value is None:
        return idx[len(idx) // 2]
    return space.nearest_index(m, p, value)


Best = dict[str, dict[str, Any]]


def _apply(space: SearchSpace, state: State, a: Action, best: Best) -> State:
    """One handler per action type (``_HANDLERS``); a new component is explored around the best model."""
    if a.type in _NEW_COMPONENT and not a.width_zero:
        return _around_best(space, state, a, best)
    handler = _HANDLERS.get(a.type)
    if handler is None:
        raise ActionError(f"unknown action type {a.type!r}")
    return handler(space, state, a, best)


def _target(a: Action) -> tuple[str, str]:
    """The module and parameter an action names (both required)."""
    _need(a, "module", "param")
    assert a.module is not None and a.param is not None
    return a.module, a.param


def _window(b: int, width: int, n: int) -> list[int]:
    """Ladder positions within ``width`` steps of ``b``."""
    return [i for i in range(b - width, b + width + 1) if 0 <= i < n]


def _on_ladder(space: SearchSpace, module: str, param: str, value: float, name: str | None = None) -> int:
    """The ladder position of ``value``, which must be one of the ladder's values."""
    ladder = space.ladders[module][param]
    i = space.nearest_index(module, param, value)
    if abs(float(ladder[i]) - value) > 1e-9 * max(1.0, abs(value)):
        raise ActionError(f"{name or f'{module}.{param}'} = {value} is not an allowed value; allowed: {ladder}")
    return i


def _zoom(space: SearchSpace, state: State, a: Action, best: Best) -> State:
    """Every parameter: the best value and its ladder neighbours (± width); with ``around``, around
    another centre (another basin's best model); with module/param/values, one parameter moved."""
    if a.around:
        centre = {m: dict(v) for m, v in best.items()}
        for name, value in a.around:
            m, _, p = name.partition(".")
            _check_param(space, state, m, p)
            _on_ladder(space, m, p, value, name)
            centre.setdefault(m, {})[p] = value
        return _zoom(
            space, state, Action("zoom", width=a.width, module=a.module, param=a.param, values=a.values), centre
        )
    new = state
    for m, p, _idx in state.choice:
        if space.is_held(state, m, p):
            continue
        new = new.with_indices(m, p, _window(_best_index(space, state, best, m, p), a.width, len(space.ladders[m][p])))
    if a.module or a.param or a.values:  # ... with one parameter moved to other values: another basin
        _need(a, "module", "param")
        if not a.values:
            raise ActionError("zoom on a parameter needs 'values'")
        return _move(space, new, Action("set", a.module, a.param, values=a.values), best)
    return new


def _scan(space: SearchSpace, state: State, a: Action, best: Best) -> State:
    """One module's parameters over their whole ladders, the rest at best ± width."""
    _need(a, "module")
    if a.module not in state.modules:
        raise ActionError(f"module {a.module!r} is not in the current configuration")
    for name in a.couple:
        m, _, p = name.partition(".")
        _check_param(space, state, m, p)
    new = state
    for m, p, _idx in state.choice:
        if space.is_held(state, m, p) and a.param != p:
            continue
        n = len(space.ladders[m][p])
        if m == a.module and (a.param in (None, p)):
            new = new.with_indices(m, p, list(range(n)))
        else:
            w = a.width if (not a.couple or f"{m}.{p}" in a.couple) else 0
            new = new.with_indices(m, p, _window(_best_index(space, state, best, m, p), w, n))
    return new


def _widen(a: Action, idx: list[int], n: int, space: SearchSpace) -> list[int]:
    lo, hi = min(idx), max(idx)
    sel = list(idx)
    if a.direction in ("down", "both", None):
        sel += list(range(max(lo - a.steps, 0), lo))
    if a.direction in ("up", "both", None):
        sel += list(range(hi + 1, min(hi + a.steps, n - 1) + 1))
    return sel


def _shift(a: Action, idx: list[int], n: int, space: SearchSpace) -> list[int]:
    _need(a, "direction")
    d = a.steps if a.direction == "up" else -a.steps
    sel = [i + d for i in idx if 0 <= i + d < n]
    if not sel:
        raise ActionError(f"{a.describe()} leaves the ladder")
    return sel


def _set(a: Action, idx: list[int], n: int, space: SearchSpace) -> list[int]:
    if not a.values:
        raise ActionError("set needs 'values'")
    module, param = _target(a)
    return [_on_ladder(space, module, param, v) for v in a.values]


def _move(space: SearchSpace, state: State, a: Action, best: Best) -> State:
    """One parameter's values on its ladder: refine (best ± width), narrow (best), widen, shift, set."""
    module, param = _target(a)
    ladder = _check_param(space, state, module, param)
    idx, n = list(state.indices(module, param)), len(ladder)
    if a.type in ("refine", "narrow"):
        b = _best_index(space, state, best, module, param)
        sel = _window(b, a.width if a.type == "refine" else 0, n)
    else:
        sel = {"widen": _widen, "shift": _shift, "set": _set}[a.type](a, idx, n, space)
    return state.with_indices(module, param, sel)


def _around_best(space: SearchSpace, state: State, a: Action, best: Best) -> State:
    """A new component explored around the current best model: the others at best ± 1 step, or at
    the best model itself when that neighbourhood times the new component would be too large."""
    inner = Action(**{**a.__dict__, "width_zero": True})
    wide = _apply(space, _zoom(space, state, Action("zoom", width=1), best), inner, best)
    if space.size(wide) <= NEW_COMPONENT_MODELS:
        return wide
    return _apply(space, _zoom(space, state, Action("zoom", width=0), best), inner, best)


def _add_burst(space: SearchSpace, state: State, a: Action, best: Best) -> State:
    m = "sfhdelayed" if "sfhdelayed" in state.modules else None
    if m is None or "f_burst" not in space.ladders[m]:
        raise ActionError("add_burst needs sfhdelayed with an f_burst ladder")
    ladder = space.ladders[m]["f_burst"]
    burst = [i for i, v in enumerate(ladder) if v > 0]
    if not burst:
        raise ActionError("the f_burst ladder has no burst")
    picks = sorted({burst[0], burst[len(burst) // 2], burst[-1]} | {i for i, v in enumerate(ladder) if v == 0})
    new = state.with_indices(m, "f_burst", picks)
    for p in ("age_burst", "tau_burst"):
        if p in space.ladders[m]:
            new = new.with_indices(m, p, list(range(len(space.ladders[m][p]))))
    return new


def _choices(state: State, modules: list[str]) -> dict[str, dict[str, list[int]]]:
    return {m: {p: list(i) for mm, p, i in state.choice if mm == m} for m in modules}


def _add_module(space: SearchSpace, state: State, a: Action, best: Best) -> State:
    _need(a, "module")
    if a.module not in space.ladders:
        raise ActionError(f"module {a.module!r} is not allowed here; allowed: {', '.join(space.ladders)}")
    if a.module in state.modules:
        raise ActionError(f"module {a.module!r} is already in the configuration")
    cat = MODULES[a.module].category
    if any(MODULES[m].category == cat for m in state.modules):
        raise ActionError(f"a {cat} module is already present; use swap_module")
    return space.state(list(state.modules) + [a.module], _choices(state, list(state.modules)))


def _remove_module(space: SearchSpace, state: State, a: Action, best: Best) -> State:
    _need(a, "module")
    if a.module not in state.modules:
        raise ActionError(f"module {a.module!r} is not in the configuration")
    if MODULES[a.module].category in _REQUIRED_MODULES:
        raise ActionError(f"module {a.module!r} is required")
    mods = [m for m in state.modules if m != a.module]
    if MODULES[a.module].category == "attenuation":
        mods = [m for m in mods if MODULES[m].category != "dust_emission"]
    return space.state(mods, _choices(state, mods))


def _swap_module(space: SearchSpace, state: State, a: Action, best: Best) -> State:
    _need(a, "module")
    target = a.to or SWAPS.get(a.module or "")
    if a.module not in state.modules:
        raise ActionError(f"module {a.module!r} is not in the configuration")
    if target is None or target not in space.ladders or SWAPS.get(a.module or "") != target:
        raise ActionError(f"cannot swap {a.module!r} for {target!r}")
    mods = [target if m == a.module else m for m in state.modules]
    return space.state(mods, _choices(state, [m for m in mods if m != target]))


_NEW_COMPONENT = ("add_burst", "add_module", "swap_module")
_HANDLERS: dict[str, Callable[[SearchSpace, State, Action, Best], State]] = {
    "zoom": _zoom,
    "scan": _scan,
    **dict.fromkeys(("refine", "widen", "shift", "narrow", "set"), _move),
    "add_burst": _add_burst,
    "add_module": _add_module,
    "remove_module": _remove_module,
    "swap_module": _swap_module,
}
