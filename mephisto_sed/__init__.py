"""Mephisto SED: a CIGALE-compatible SED engine and the agents that search model space.

Notebook API::

    import mephisto_sed as ms
    cat = ms.read_catalog("observations.txt")            # CIGALE table, CSV, FITS, VOTable
    cfg = ms.read_pcigale_ini("pcigale.ini")             # or ms.Configuration.from_modules({...})
    results = ms.fit_catalog(cat, cfg)                   # astropy Table, CIGALE-like columns
    ms.plot_fit(results.fits[0], "source.png")
"""

__version__ = "0.1.0"

from importlib import import_module
from typing import Any

# The notebook API, imported on first use: `import mephisto_sed` (and `mephisto-sed --help`)
# stays fast, and matplotlib is loaded only by whoever plots.
_API = {
    "Catalog": "catalog",
    "CatalogError": "catalog",
    "read_catalog": "catalog",
    "ConfigError": "config",
    "Configuration": "config",
    "read_pcigale_ini": "config",
    "write_pcigale_ini": "config",
    "get_filter": "filters",
    "register_filter_file": "filters",
    "FitResults": "gridfit",
    "fit_catalog": "gridfit",
    "write_results": "outputs",
    "plot_fit": "plotting",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Catalog",
    "CatalogError",
    "ConfigError",
    "Configuration",
    "FitResults",
    "fit_catalog",
    "get_filter",
    "plot_fit",
    "read_catalog",
    "read_pcigale_ini",
    "register_filter_file",
    "write_pcigale_ini",
    "write_results",
]
