"""Declarative specification of the SED modules the built-in engine supports.

Names, parameters and units follow CIGALE's ``sed_modules`` so that an astronomer's
``pcigale.ini`` works unchanged. Each parameter carries its unit, default and the bounds
the engine's grids support; ``validate`` turns user values into typed lists or raises a
``ConfigError`` naming the module, the parameter and the reason.
"""

from __future__ import annotations

from typing import Any

from . import (
    agn,
    bc03,
    dl2014,
    dustatt_calzleit,
    dustatt_modified_starburst,
    nebular,
    redshifting,
    restframe_parameters,
    sfh2exp,
    sfhdelayed,
    sfhdelayedbq,
)
from .base import (
    MAX_REDSHIFTS,
    MAX_VALUES,
    AGNModel,
    AttenuationModel,
    ConfigError,
    DustEmissionModel,
    ModuleSpec,
    NebularModel,
    Param,
    SFHModel,
    SSPModel,
)

__all__ = [
    "CATEGORY_ORDER",
    "ConfigError",
    "MAX_REDSHIFTS",
    "MAX_VALUES",
    "MODULES",
    "ModuleSpec",
    "Param",
    "SFH_MODELS",
    "ATTENUATION_MODELS",
    "SSP_MODELS",
    "NEBULAR_MODELS",
    "DUST_EMISSION_MODELS",
    "AGN_MODELS",
    "AGNModel",
    "AttenuationModel",
    "DustEmissionModel",
    "NebularModel",
    "SFHModel",
    "SSPModel",
    "validate_module",
]


CATEGORY_ORDER = (
    "sfh",
    "ssp",
    "nebular",
    "attenuation",
    "dust_emission",
    "agn",
    "restframe",
    "redshifting",
)

MODULES: dict[str, ModuleSpec] = {
    m.SPEC.name: m.SPEC
    for m in (
        sfhdelayed,
        sfh2exp,
        sfhdelayedbq,
        bc03,
        nebular,
        dustatt_modified_starburst,
        dustatt_calzleit,
        dl2014,
        agn,
        restframe_parameters,
        redshifting,
    )
}


# how each computed module enters the model grid, per category (each in the module's own file)
SFH_MODELS: dict[str, SFHModel] = {m.SPEC.name: m.MODEL for m in (sfhdelayed, sfh2exp, sfhdelayedbq)}
SSP_MODELS: dict[str, SSPModel] = {bc03.SPEC.name: bc03.MODEL}
NEBULAR_MODELS: dict[str, NebularModel] = {nebular.SPEC.name: nebular.MODEL}
ATTENUATION_MODELS: dict[str, AttenuationModel] = {
    m.SPEC.name: m.MODEL for m in (dustatt_modified_starburst, dustatt_calzleit)
}
DUST_EMISSION_MODELS: dict[str, DustEmissionModel] = {dl2014.SPEC.name: dl2014.MODEL}
AGN_MODELS: dict[str, AGNModel] = {agn.SPEC.name: agn.MODEL}


def _coerce(module: str, p: Param, raw: Any) -> Any:
    where = f"{module}.{p.name}"
    if p.kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ConfigError(f"{where}: {raw!r} is not a boolean")
    if p.kind is str:
        return str(raw)
    text = str(raw).strip()
    if text.startswith("eval") or any(c in text for c in "()[]_;"):
        raise ConfigError(f"{where}: {raw!r} is not a number (expressions are not evaluated; list values explicitly)")
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: {raw!r} is not a number") from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{where}: {raw!r} is not finite")
    if p.kind is int:
        if value != int(value):
            raise ConfigError(f"{where}: {raw!r} is not an integer")
        value = int(value)
    if p.choices is not None and not any(abs(value - c) <= 1e-9 * max(1.0, abs(c)) for c in p.choices):
        raise ConfigError(f"{where}: {raw!r} is not supported; allowed: {', '.join(map(str, p.choices))}")
    if p.bounds is not None and not (p.bounds[0] <= value <= p.bounds[1]):
        raise ConfigError(f"{where}: {raw!r} is outside the supported range [{p.bounds[0]}, {p.bounds[1]}]")
    return value


def validate_module(name: str, params: dict[str, Any]) -> dict[str, list[Any]]:
    """Typed, bounded value lists for every parameter of ``name`` (defaults filled in)."""
    if name not in MODULES:
        raise ConfigError(f"unsupported module {name!r}; supported: {', '.join(MODULES)}")
    spec = MODULES[name]
    if not spec.computes:
        return {}
    known = {p.name for p in spec.params}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(
            f"{name}: unsupported parameter(s) {', '.join(unknown)}; supported: {', '.join(sorted(known))}"
        )
    out: dict[str, list[Any]] = {}
    for p in spec.params:
        raw = params.get(p.name, p.default)
        if p.kind is str:
            out[p.name] = [raw if isinstance(raw, str) else " & ".join(map(str, raw))]
            continue
        values = raw if isinstance(raw, (list, tuple)) else [raw]
        values = [v for v in values if v is not None and not (isinstance(v, str) and v.strip() == "")]
        if not values:
            if p.default is None:
                out[p.name] = [None]
                continue
            values = [p.default]
        if not p.grid and len(values) > 1:
            raise ConfigError(f"{name}.{p.name}: takes one value, got {len(values)}")
        cap = p.max_values or MAX_VALUES
        if len(values) > cap:
            raise ConfigError(f"{name}.{p.name}: {len(values)} values, at most {cap} per parameter")
        typed = [_coerce(name, p, v) for v in values]
        out[p.name] = list(dict.fromkeys(typed))  # keep order, drop repeats
    return out
