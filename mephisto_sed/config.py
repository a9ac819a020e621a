"""Model configurations: CIGALE modules with parameter value lists, read from and written to
``pcigale.ini`` (ConfigObj syntax, the library CIGALE itself uses)."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from configobj import ConfigObj, ConfigObjError

from .sed_modules import CATEGORY_ORDER, MODULES, ConfigError, validate_module

__all__ = [
    "Configuration",
    "ConfigError",
    "MAX_INI_BYTES",
    "parse_pcigale_ini",
    "read_pcigale_ini",
    "write_pcigale_ini",
    "DEFAULT_CONFIG",
]

MAX_GRID_MODELS = 10**10  # per redshift: checked before any model is made

_REQUIRED = ("sfh", "ssp", "redshifting")
_SINGLE = ("sfh", "ssp", "nebular", "attenuation", "dust_emission", "agn")


@dataclass
class Configuration:
    """An ordered set of CIGALE modules, each with a value list per parameter.

    ``params[module][name]`` is a list; the model grid is the Cartesian product of all lists.
    """

    modules: list[str]
    params: dict[str, dict[str, list[Any]]]
    bands: list[str] = field(default_factory=list)
    additionalerror: float = 0.1
    data_file: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # ini keys kept verbatim for write-back
    raw_module_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_modules(cls, modules: dict[str, dict[str, Any]], **kwargs: Any) -> Configuration:
        """Build and validate from ``{module: {param: value or list}}``."""
        names = list(modules)
        typed = {m: validate_module(m, modules[m]) for m in names}
        cfg = cls(names, typed, raw_module_params={m: dict(v) for m, v in modules.items()}, **kwargs)
        cfg.check()
        return cfg

    def check(self) -> None:
        cats: dict[str, list[str]] = {}
        for m in self.modules:
            if m not in MODULES:
                raise ConfigError(f"unsupported module {m!r}; supported: {', '.join(MODULES)}")
            cats.setdefault(MODULES[m].category, []).append(m)
        for c in _REQUIRED:
            if c not in cats:
                needed = [n for n, s in MODULES.items() if s.category == c]
                raise ConfigError(f"sed_modules lacks a {c} module (one of {', '.join(needed)})")
        for c in _SINGLE:
            if len(cats.get(c, [])) > 1:
                raise ConfigError(f"sed_modules has several {c} modules: {', '.join(cats[c])}")
        if "dust_emission" in cats and "attenuation" not in cats:
            raise ConfigError("dust emission needs an attenuation module for its energy balance")
        if self.n_models > MAX_GRID_MODELS:
            raise ConfigError(f"the grid holds {self.n_models:.3g} models per redshift, over {MAX_GRID_MODELS:.0e}")
        if not (0 <= self.additionalerror < 10):
            raise ConfigError(f"additionalerror: {self.additionalerror} outside [0, 10)")

    def module_of(self, category: str) -> str | None:
        for m in self.modules:
            if MODULES[m].category == category:
                return m
        return None

    def required(self, category: str) -> str:
        """The module of a category every configuration has (sfh, ssp, redshifting; see check)."""
        module = self.module_of(category)
        if module is None:
            raise ConfigError(f"sed_modules lacks a {category} module")
        return module

    @property
    def n_models(self) -> int:
        """Models per redshift (the product of every parameter list's length but the redshifts')."""
        return math.prod(len(v) for m, p in self.params.items() for k, v in p.items() if k != "redshift")

    def axes(self) -> list[tuple[str, str, list[Any]]]:
        return [(m, k, v) for m in self.modules for k, v in self.params[m].items()]

    def iter_models(self) -> Iterator[dict[str, dict[str, Any]]]:
        axes = self.axes()
        for combo in itertools.product(*(a[2] for a in axes)):
            model: dict[str, dict[str, Any]] = {m: {} for m in self.modules}
            for (m, k, _), v in zip(axes, combo):
                model[m][k] = v
            yield model

    def with_values(self, module: str, **values: Any) -> Configuration:
        """A copy with some parameter lists replaced (validated)."""
        raw: dict[str, dict[str, Any]] = {m: {k: list(v) for k, v in self.params[m].items()} for m in self.modules}
        raw[module].update({k: v if isinstance(v, (list, tuple)) else [v] for k, v in values.items()})
        for m in self.modules:  # modules that compute nothing keep their raw parameters
            if not raw[m]:
                raw[m] = dict(self.raw_module_params.get(m, {}))
        return Configuration.from_modules(
            raw,
            bands=list(self.bands),
            additionalerror=self.additionalerror,
            data_file=self.data_file,
            extra=dict(self.extra),
        )

    def single(self) -> dict[str, dict[str, Any]]:
        """The one model of a configuration whose lists each hold one value."""
        if self.n_models != 1:
            raise ConfigError(f"configuration holds {self.n_models} models, expected one")
        return next(self.iter_models())


def _ini_value(v: list[Any]) -> Any:
    if len(v) == 1:
        x = v[0]
        return "" if x is None else str(x)
    return [str(x) for x in v]


MAX_INI_BYTES = 256 * 1024  # a CIGALE pcigale.ini with every module commented is ~30 KB


def read_pcigale_ini(path: str | Path) -> Configuration:
    """Parse a modern ``pcigale.ini`` into a validated :class:`Configuration`."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INI_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_pcigale_ini(text, name=str(path))


def parse_pcigale_ini(text: str, name: str = "pcigale.ini") -> Configuration:
    """Parse the text of a ``pcigale.ini``; errors start with ``name`` (and the line when known),
    never with a server path or an exception class.

    Interpolation (ConfigObj's ``%(key)s``) is off: CIGALE does not use it, and nested
    references expand exponentially (a few KB could ask for gigabytes)."""
    if len(text.encode("utf-8", "replace")) > MAX_INI_BYTES:
        raise ConfigError(f"{name}: larger than {MAX_INI_BYTES // 1024} KiB")
    try:
        ini = ConfigObj(text.splitlines(), encoding="utf-8", interpolation=False, list_values=True)
    except ConfigObjError as exc:
        raise ConfigError(f"{name}: cannot parse: {exc}") from None
    mods = ini.get("sed_modules", [])
    if isinstance(mods, str):
        mods = [m.strip() for m in mods.split(",") if m.strip()]
    if not mods:
        raise ConfigError(f"{name}: sed_modules is empty")
    section = ini.get("sed_modules_params", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{name}{_line(text, 'sed_modules_params')}: sed_modules_params is not a section")
    raw: dict[str, dict[str, Any]] = {}
    for m in mods:
        if m not in MODULES:
            raise ConfigError(
                f"{name}{_line(text, 'sed_modules')}: unsupported module {m!r} in sed_modules; "
                f"supported: {', '.join(MODULES)}"
            )
        params = section.get(m, {})
        if not isinstance(params, dict):
            raise ConfigError(f"{name}{_line(text, m)}: sed_modules_params.{m} is not a section")
        raw[m] = {k: v for k, v in params.items() if not isinstance(v, dict)}
    bands = ini.get("bands", [])
    if isinstance(bands, str):
        bands = [b for b in (x.strip() for x in bands.split(",")) if b]
    bands = [str(b) for b in bands if not str(b).endswith("_err")]
    try:
        addl = float(ini.get("additionalerror", 0.1) or 0.1)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}{_line(text, 'additionalerror')}: additionalerror is not a number") from None
    extra = {k: ini[k] for k in ini if k not in ("sed_modules", "sed_modules_params", "bands", "additionalerror")}
    try:
        cfg = Configuration.from_modules(
            raw, bands=bands, additionalerror=addl, data_file=str(ini.get("data_file", "")), extra=extra
        )
    except ConfigError as exc:
        where = re.match(r"(\w+)\.(\w+):", str(exc))
        line = _line(text, where.group(2), after=f"[[{where.group(1)}]]") if where else ""
        raise ConfigError(f"{name}{line}: {exc}") from None
    return cfg


def _line(text: str, key: str, after: str | None = None) -> str:
    """`` line N`` of the first ``key = …`` (or section ``[key]``) after the line ``after``; "" if none."""
    start = 0
    lines = text.splitlines()
    if after is not None:
        start = next((i for i, s in enumerate(lines) if s.strip() == after), 0)
    pattern = re.compile(rf"^\s*(\[+\s*{re.escape(key)}\s*\]+|{re.escape(key)}\s*=)")
    for i in range(start, len(lines)):
        if pattern.match(lines[i]):
            return f" line {i + 1}"
    return ""


def write_pcigale_ini(cfg: Configuration, path: str | Path, data_file: str | None = None) -> Path:
    """Write ``cfg`` as a ``pcigale.ini`` that CIGALE (and :func:`read_pcigale_ini`) reads back."""
    path = Path(path)
    ini = ConfigObj(encoding="utf-8")
    ini.filename = str(path)
    ini["data_file"] = data_file if data_file is not None else cfg.data_file
    ini["parameters_file"] = ""
    ini["sed_modules"] = list(cfg.modules)
    ini["analysis_method"] = "pdf_analysis"
    ini["cores"] = 1
    bands: list[str] = []
    for b in cfg.bands:
        bands += [b, f"{b}_err"]
    ini["bands"] = bands
    ini["properties"] = ""
    ini["additionalerror"] = cfg.additionalerror
    ini["sed_modules_params"] = {}
    for m in cfg.modules:
        spec = MODULES[m]
        if not spec.computes:
            ini["sed_modules_params"][m] = dict(cfg.raw_module_params.get(m, {}))
            continue
        ini["sed_modules_params"][m] = {k: _ini_value(v) for k, v in cfg.params[m].items()}
    analysis = dict(cfg.extra.get("analysis_params", {}))
    analysis.setdefault("variables", "")
    analysis["bands"] = list(cfg.bands)
    analysis.setdefault("save_best_sed", "True")
    analysis.setdefault("blocks", 1)
    ini["analysis_params"] = analysis
    ini.write()
    return path


DEFAULT_CONFIG: dict[str, dict[str, Any]] = {
    "sfhdelayed": {
        "tau_main": [100.0, 300.0, 1000.0, 3000.0],
        "age_main": [100.0, 300.0, 1000.0, 2000.0],
        "f_burst": [0.0],
    },
    "bc03": {"imf": 1, "metallicity": [0.004, 0.02]},
    "nebular": {"logU": [-3.0, -2.0], "zgas": [0.004, 0.02]},
    "dustatt_modified_starburst": {"E_BV_lines": [0.0, 0.1, 0.2, 0.4, 0.7, 1.0], "E_BV_factor": 0.44},
    "dl2014": {"qpah": 2.5, "umin": 1.0, "alpha": 2.0, "gamma": 0.1},
    "redshifting": {"redshift": ""},
}


def ordered(names: list[str]) -> list[str]:
    """Modules sorted in CIGALE's processing order."""
    return sorted(names, key=lambda m: CATEGORY_ORDER.index(MODULES[m].category))
