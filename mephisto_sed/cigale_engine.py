"""The ``cigale`` engine: the same configuration written as a real ``pcigale.ini`` plus a CIGALE
observation file, run with ``pcigale`` where the user has installed it (CIGALE is not on PyPI),
and the results read back into the built-in engine's result type."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from astropy.table import Table

from .catalog import Catalog
from .config import ConfigError, Configuration, write_pcigale_ini
from .gridfit import FitResults, SourceFit, fit_bands
from .likelihood import BestModel

__all__ = [
    "CigaleNotInstalled",
    "prepare_cigale_run",
    "run_cigale",
    "read_cigale_results",
    "fit_with_cigale",
    "ANALYSED_VARIABLES",
]

# Modules of ours that CIGALE does not have (the rest share names and parameters).
_NO_CIGALE_COUNTERPART = {"agn": "our own AGN model; use CIGALE's skirtor2016 or fritz2006 there"}

ANALYSED_VARIABLES = [
    "stellar.m_star",
    "sfh.sfr",
    "sfh.sfr10Myrs",
    "sfh.sfr100Myrs",
    "sfh.age_main",
    "sfh.tau_main",
    "attenuation.E_BV_lines",
    "nebular.logU",
    "stellar.metallicity",
    "dust.luminosity",
]


class CigaleNotInstalled(RuntimeError):
    """``pcigale`` is not on PATH."""


def prepare_cigale_run(catalog: Catalog, config: Configuration, workdir: str | Path) -> Path:
    """Write ``pcigale.ini`` and ``observations.txt`` into ``workdir``; returns the ini path."""
    for m in config.modules:
        if m in _NO_CIGALE_COUNTERPART:
            raise ConfigError(f"module {m!r} cannot run in CIGALE: {_NO_CIGALE_COUNTERPART[m]}")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    bands = fit_bands(catalog, config)
    cat = catalog.select(slice(None))
    keep = [cat.bands.index(b) for b in bands]
    cat = Catalog(cat.ids, cat.redshift, bands, cat.flux[:, keep], cat.err[:, keep], cat.upper_limit[:, keep])
    cat.write_cigale(work / "observations.txt")
    cfg = Configuration(
        list(config.modules),
        config.params,
        bands,
        config.additionalerror,
        "observations.txt",
        dict(config.extra),
        dict(config.raw_module_params),
    )
    analysis = dict(cfg.extra.get("analysis_params", {}))
    sfh_vars = {"sfh2exp": ["sfh.age", "sfh.tau_main"]}.get(cfg.module_of("sfh") or "", [])
    variables = [v for v in ANALYSED_VARIABLES if not (sfh_vars and v in ("sfh.age_main", "sfh.tau_main"))]
    analysis.update(
        {
            "variables": variables + sfh_vars,
            "save_best_sed": "True",
            "lim_flag": "noscaling",
            "mock_flag": "False",
            "redshift_decimals": 2,
            "blocks": 1,
        }
    )
    cfg.extra["analysis_params"] = analysis
    return write_pcigale_ini(cfg, work / "pcigale.ini", data_file="observations.txt")


def run_cigale(workdir: str | Path, timeout_s: float | None = None) -> Path:
    """Run ``pcigale run`` in ``workdir``; returns ``out/results.fits``."""
    exe = shutil.which("pcigale")
    if exe is None:
        raise CigaleNotInstalled("pcigale is not installed (CIGALE: https://cigale.lam.fr, not on PyPI)")
    work = Path(workdir)
    proc = subprocess.run([exe, "run"], cwd=work, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pcigale run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    out = work / "out" / "results.fits"
    if not out.exists():
        raise RuntimeError(f"pcigale finished without {out}")
    return out


def read_cigale_results(results_fits: str | Path, catalog: Catalog, config: Configuration) -> FitResults:
    """CIGALE's ``results.fits`` as a :class:`FitResults` (same column names as the built-in engine)."""
    table = Table.read(results_fits)
    table["id"] = [str(x).strip() for x in table["id"]]
    bands = fit_bands(catalog, config)
    index = {sid: i for i, sid in enumerate(catalog.ids)}
    fits = []
    for row in table:
        i = index.get(row["id"])
        if i is None:
            continue
        cols = [catalog.bands.index(b) for b in bands]
        best_flux = np.array([row[f"best.{b}"] if f"best.{b}" in table.colnames else np.nan for b in bands])
        chi2 = float(row["best.chi_square"]) if "best.chi_square" in table.colnames else np.nan
        best = BestModel(chi2=chi2, fluxes=best_flux)
        fits.append(
            SourceFit(
                row["id"],
                float(catalog.redshift[i]),
                float(catalog.redshift[i]),
                bands,
                catalog.flux[i, cols],
                catalog.err[i, cols],
                catalog.upper_limit[i, cols],
                best,
                {k: row[k] for k in table.colnames if k != "id"},
                additionalerror=config.additionalerror,
            )
        )
    return FitResults(table, fits, bands, config)


def fit_with_cigale(
    catalog: Catalog, config: Configuration, workdir: str | Path, timeout_s: float | None = None
) -> FitResults:
    """Write, run and read back a CIGALE fit of ``catalog`` with ``config``."""
    prepare_cigale_run(catalog, config, workdir)
    return read_cigale_results(run_cigale(workdir, timeout_s), catalog, config)
