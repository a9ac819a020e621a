"""Benchmarks that print JSON. Speeds are compared with bagpipes in the same run (a ratio), since
these machines are noisy. Timed work runs in a child process pinned to one BLAS thread."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

from .settings import settings

COSMOS_DIR = str(settings().cosmos_dir)
COSMOS_INI = "pcigale_zbin_2p50_3p00.ini"
COSMOS_CAT = "cosmos_specz_compilation_for_cigale_2.50_z_3.00.txt"
ONE_CORE = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def cosmos_bands() -> list[str]:
    """The 35 COSMOS bands of the COSMOS team's ini that resolve to curves here (31)."""
    from .config import read_pcigale_ini
    from .filters import UnknownFilterError, get_filter

    path = os.path.join(COSMOS_DIR, COSMOS_INI)
    if os.path.exists(path):
        names = read_pcigale_ini(path).bands
    else:  # the same list, for machines without the shared data
        from .filters import COSMOS_ALIASES

        names = list(COSMOS_ALIASES) + [
            f"subaru.suprime.IB{b}" for b in (427, 464, 484, 505, 527, 574, 624, 679, 709, 738, 767, 827)
        ]
        names += [
            "paranal.vircam.Y",
            "paranal.vircam.J",
            "paranal.vircam.H",
            "paranal.vircam.Ks",
            "spitzer.irac.I1",
            "spitzer.irac.I2",
            "hst.acs.wfc.F814W",
        ]
    out = []
    for n in names:
        try:
            get_filter(n)
            out.append(n)
        except UnknownFilterError:
            pass
    return out


def bench_config(n_target: int):
    """sfhdelayed+bc03+nebular+dustatt_modified_starburst+dl2014 with about ``n_target`` models."""
    from .config import Configuration

    n_ebv = max(2, min(40, int(round(n_target / (1872 * 3 * 6 * 2)))))
    return Configuration.from_modules(
        {
            "sfhdelayed": {
                "tau_main": list(np.geomspace(50, 8000, 12).round(1)),
                "age_main": list(np.geomspace(50, 2200, 12).round(1)),
                "tau_burst": [10.0, 50.0],
                "age_burst": [10.0, 50.0],
                "f_burst": [0.0, 0.05, 0.1, 0.3],
            },
            "bc03": {"imf": 1, "metallicity": [0.004, 0.008, 0.02]},
            "nebular": {"logU": [-4.0, -3.4, -2.8, -2.2, -1.6, -1.0], "zgas": [0.004, 0.02]},
            "dustatt_modified_starburst": {
                "E_BV_lines": list(np.linspace(0.0, 1.5, n_ebv).round(4)),
                "E_BV_factor": 0.44,
            },
            "dl2014": {"qpah": 2.5, "umin": 1.0, "alpha": 2.0, "gamma": 0.1},
            "redshifting": {"redshift": 2.75},
        }
    )


def _engine_worker(n_target: int) -> dict[str, Any]:
    """Runs in a fresh process: cold, then warm model generation, then a one-source fit."""
    t0 = time.perf_counter()
    from .likelihood import FitAccumulator, SourceData
    from .model_grid import ModelGrid

    bands = cosmos_bands()
    cfg = bench_config(n_target)
    z = 2.75
    t1 = time.perf_counter()
    grid = ModelGrid(cfg, bands)
    n = 0
    for chunk in grid.iter_chunks(z):
        n += len(chunk)
    cold = time.perf_counter() - t1
    t2 = time.perf_counter()
    n_warm = sum(len(c) for c in grid.iter_chunks(z))
    warm = time.perf_counter() - t2
    # a mock source: one model of the grid with 10% noise
    first = next(grid.iter_chunks(z))
    obs = first.fluxes[len(first) // 2] * 1e10
    data = SourceData(
        obs[None, :] * (1 + 0.1 * np.random.default_rng(1).normal(size=obs.size)),
        0.1 * obs[None, :],
        np.zeros((1, obs.size), dtype=bool),
    )
    acc = FitAccumulator(data)
    t3 = time.perf_counter()
    for chunk in grid.iter_chunks(z):
        acc.add(chunk)
    fit = time.perf_counter() - t3
    return {
        "n_models": n,
        "n_bands": len(bands),
        "redshift": z,
        "models_per_s_cold": n / cold,
        "models_per_s_warm": n_warm / warm,
        "fit_models_per_s_warm": n / fit,
        "cold_s": cold,
        "warm_s": warm,
        "import_s": t1 - t0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _cosmos_worker() -> dict[str, Any]:
    """The COSMOS team's full 2.5<z<3 grid for one real galaxy."""
    from .catalog import read_catalog
    from .config import read_pcigale_ini
    from .gridfit import fit_catalog

    cfg = read_pcigale_ini(os.path.join(COSMOS_DIR, COSMOS_INI))
    cat = read_catalog(os.path.join(COSMOS_DIR, COSMOS_CAT), on_unknown="skip").select(slice(0, 1))
    t = time.perf_counter()
    res = fit_catalog(cat, cfg, progress=False, with_sed=False)
    dt = time.perf_counter() - t
    return {
        "cosmos_grid_models": int(res.table["models_evaluated"][0]),
        "cosmos_grid_one_galaxy_s": dt,
        "cosmos_grid_models_per_s": float(res.table["models_evaluated"][0]) / dt,
        "cosmos_grid_reduced_chi2": float(res.table["best.reduced_chi_square"][0]),
        "cosmos_grid_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _bagpipes_worker(n_models: int = 200) -> dict[str, Any]:
    """bagpipes' own speed at its default settings: one model_galaxy, then update() per model."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import tempfile
    from pathlib import Path

    import bagpipes

    from .reference import _write_filters

    bands = cosmos_bands()
    with tempfile.TemporaryDirectory() as tmp:
        filt = _write_filters(bands, Path(tmp))
        comp: dict[str, Any] = {
            "redshift": 2.75,
            "delayed": {"age": 1.0, "tau": 0.5, "massformed": 10.0, "metallicity": 1.0},
            "nebular": {"logU": -2.0},
            "dust": {"type": "Calzetti", "Av": 0.5, "eta": 1.0, "qpah": 2.5, "umin": 1.0, "gamma": 0.1},
        }
        t = time.perf_counter()
        model = bagpipes.model_galaxy(comp, filt_list=filt, phot_units="mujy")
        setup = time.perf_counter() - t
        rng = np.random.default_rng(0)
        t = time.perf_counter()
        for _ in range(n_models):
            comp["delayed"]["age"] = float(rng.uniform(0.05, 2.0))
            comp["delayed"]["tau"] = float(rng.uniform(0.05, 5.0))
            comp["dust"]["Av"] = float(rng.uniform(0.0, 2.0))
            comp["nebular"]["logU"] = float(rng.uniform(-4.0, -1.0))
            model.update(comp)
        dt = time.perf_counter() - t
    return {"bagpipes_models_per_s": n_models / dt, "bagpipes_setup_s": setup}


def _run_worker(fn: str, *args: Any) -> dict[str, Any]:
    code = (
        f"import json; from mephisto_sed import bench_engine as bench; print('@@' + json.dumps(bench.{fn}(*{args!r})))"
    )
    env = {**os.environ, **ONE_CORE}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    raise RuntimeError(f"benchmark worker {fn} failed:\n{proc.stderr[-3000:]}")


def bench_engine(n_target: int = 500_000, compare_bagpipes: bool = True, cosmos_grid: bool = True) -> dict[str, Any]:
    """Engine speed (cold/warm, one core), memory, bagpipes speed and agreement in the same run."""
    result: dict[str, Any] = {"benchmark": "engine", "one_core": True}
    result.update(_run_worker("_engine_worker", n_target))
    if compare_bagpipes:
        from .reference import DEFAULT_CASES, compare

        result.update(_run_worker("_bagpipes_worker"))
        result["ratio_vs_bagpipes"] = result["models_per_s_cold"] / result["bagpipes_models_per_s"]
        result["ratio_warm_vs_bagpipes"] = result["models_per_s_warm"] / result["bagpipes_models_per_s"]
        diffs = [compare(c) for c in DEFAULT_CASES]
        result["max_rel_diff_vs_bagpipes"] = max(d["max_abs_rel_diff"] for d in diffs)
        result["rel_diff_cases"] = {d["case"]: round(d["max_abs_rel_diff"], 5) for d in diffs}
    if cosmos_grid and os.path.exists(os.path.join(COSMOS_DIR, COSMOS_INI)):
        result.update(_run_worker("_cosmos_worker"))
    return result
