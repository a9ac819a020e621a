"""Mephisto SED: a CIGALE-compatible SED engine and the agents that search model space.

Notebook API::

    import mephisto_sed as ms
    cat = ms.read_catalog("observations.txt")            # CIGALE table, CSV, FITS, VOTable
    cfg = ms.read_pcigale_ini("pcigale.ini")             # or ms.Configuration.from_modules({...})
    results = ms.fit_catalog(cat, cfg)                   # astropy Table, CIGALE-like columns
    ms.plot_fit(results.fits[0], "source.png")
"""

__version__ = "0.1.0"

from .catalog import Catalog, CatalogError, read_catalog  # noqa: E402
from .config import ConfigError, Configuration, read_pcigale_ini, write_pcigale_ini  # noqa: E402
from .filters import get_filter, register_filter_file  # noqa: E402
from .gridfit import FitResults, fit_catalog  # noqa: E402
from .outputs import write_results  # noqa: E402
from .plotting import plot_fit  # noqa: E402

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
