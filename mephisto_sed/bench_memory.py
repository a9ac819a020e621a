"""``mephisto-sed bench memory``: peak memory of ``mephisto-sed grid`` as the catalogue grows.

Each run is a fresh process (its own peak RSS) fitting a mock catalogue with the default
configuration, ``--no-plots`` and no SED files; the large catalogue repeats the small one's
mocks under new ids. Memory must be flat in the number of sources: the figure is the ratio of
the two peaks (target ≤ 1.2), and both runs' results are checked equal where they overlap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table, vstack

ONE_CORE = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _catalogue(n: int, unique: int, path: Path) -> None:
    """``n`` sources: ``unique`` mocks repeated under new ids (the fit cost, not the variety, grows)."""
    from .config import DEFAULT_CONFIG, Configuration
    from .mock import BROAD_BANDS, make_mock_catalog

    cat, _ = make_mock_catalog(Configuration.from_modules(DEFAULT_CONFIG), BROAD_BANDS, unique, seed=1)
    base = cat.to_table()
    parts = []
    for r in range(-(-n // unique)):
        part = base.copy()
        part["id"] = [f"{sid}-{r}" for sid in base["id"]]
        parts.append(part)
    vstack(parts)[:n].write(path, format="ascii.commented_header", overwrite=True)


def _run(catalog: Path, out: Path) -> dict[str, Any]:
    # the child runs the command line itself and reports its own peak (ru_maxrss, kB)
    code = (
        "import json, resource, time; from mephisto_sed.cli import main; t0 = time.perf_counter(); "
        f"code = main(['grid', {str(catalog)!r}, '--out', {str(out)!r}, '-q', '--no-plots']); "
        "print('@@' + json.dumps({'exit': code, 'seconds': time.perf_counter() - t0, "
        "'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **ONE_CORE}, check=False
    )
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    raise RuntimeError(f"grid run failed:\n{proc.stderr[-3000:]}")


def bench_memory(n_small: int = 1_000, n_large: int = 100_000, unique: int = 1_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mephisto-bench-memory-") as d:
        tmp = Path(d)
        _catalogue(n_large, unique, tmp / "large.txt")
        large = Table.read(tmp / "large.txt", format="ascii.commented_header")
        large[:n_small].write(tmp / "small.txt", format="ascii.commented_header")
        small_run = _run(tmp / "small.txt", tmp / "out-small")
        large_run = _run(tmp / "large.txt", tmp / "out-large")
        a = Table.read(tmp / "out-small" / "results.csv", format="ascii.csv")
        b = Table.read(tmp / "out-large" / "results.csv", format="ascii.csv")[: len(a)]
        same = bool(
            list(a["id"]) == list(b["id"])
            and np.allclose(a["bayes.stellar.m_star"], b["bayes.stellar.m_star"], rtol=1e-9, equal_nan=True)
        )
        files = sorted(p.name for p in (tmp / "out-large").iterdir())
    return {
        "benchmark": "grid memory",
        "n_small": n_small,
        "n_large": n_large,
        "peak_rss_mb_small": round(small_run["peak_rss_mb"], 1),
        "peak_rss_mb_large": round(large_run["peak_rss_mb"], 1),
        "rss_ratio_large_vs_small": round(large_run["peak_rss_mb"] / small_run["peak_rss_mb"], 3),
        "seconds_small": round(small_run["seconds"], 1),
        "seconds_large": round(large_run["seconds"], 1),
        "sources_per_s_large": round(n_large / large_run["seconds"], 1),
        "results_equal_on_overlap": same,
        "files_written_large": files,
    }
