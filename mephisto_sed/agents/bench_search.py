"""``mephisto-sed bench search``: how few models the agent needs to reach grid-search accuracy.

For each source the reference is the best χ² of the full grid of the reference configuration
(by default the COSMOS team's expert grid for 2.5 < z < 3: ~19 million models at z ≈ 2.75).
The agent counts the models it evaluates until its best χ² is within ``tolerance`` (5%) of it.
Knowledge is learned by self-play on *other* galaxies of the catalogue, then used on these.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..catalog import read_catalog
from ..config import read_pcigale_ini
from ..settings import settings
from .execute import Source, execute
from .policy import ExpertPolicy
from .search import Budget, search
from .space import SearchSpace

DEFAULT_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cosmos2020_specz"
DEFAULT_CATALOG = DEFAULT_DIR / "cosmos_specz_compilation_for_cigale_2.50_z_3.00.txt"
DEFAULT_INI = DEFAULT_DIR / "pcigale_zbin_2p50_3p00.ini"
DCHI2_ABSOLUTE = 2.0  # "as good as the grid" in absolute χ², beside the relative tolerance


def reference_cache(*parts: str) -> Path:
    """Where full-grid references are cached, keyed by what they depend on (grid, sources, bands)."""
    key = hashlib.sha1("".join(parts).encode()).hexdigest()[:12]
    return settings().cache_dir / f"reference_chi2_{key}.json"


def _cache_path(ini: Path, catalog: Path) -> Path:
    return reference_cache(ini.read_text(), str(catalog))


def reference_chi2(space: SearchSpace, sources: list[Source], cache: Path | None, progress: bool) -> dict[str, dict]:
    """Full-grid best χ² and mass estimate per source (cached on disk: the reference grid costs
    ~10 s a source)."""
    known: dict[str, dict] = {}
    if cache is not None and cache.exists():
        known = json.loads(cache.read_text())
    state = space.reference_state()
    for src in tqdm(sources, desc="reference grid", unit="src", disable=not progress):
        if "m_star_log" in known.get(src.id, {}):
            continue
        ex = execute(space, state, src)
        known[src.id] = {
            "chi2": ex.chi2,
            "chi2_red": ex.chi2_red,
            "models": ex.n_models,
            "m_star": ex.row["bayes.stellar.m_star"],
            "m_star_err": ex.row["bayes.stellar.m_star_err"],
            "m_star_log": ex.row["bayes.stellar.m_star_log"],
            "m_star_log_err": ex.row["bayes.stellar.m_star_log_err"],
        }
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(known))
    return known


def benchmark_sources(
    catalog: str | Path | None, ini: str | Path | None, n: int, n_train: int
) -> tuple[SearchSpace, list[Source], list[Source], Path, Path]:
    """The search space of ``ini`` (default: the COSMOS team's 2.5 < z < 3 grid) and the first ``n``
    sources of ``catalog`` to test on, the next ``n_train`` to learn from."""
    catalog = Path(catalog) if catalog else DEFAULT_CATALOG
    ini = Path(ini) if ini else DEFAULT_INI
    cfg = read_pcigale_ini(ini)
    cat = read_catalog(catalog, on_unknown="skip")
    space = SearchSpace.from_config(cfg)
    space.bands = [b for b in cfg.bands if b in cat.bands] if cfg.bands else list(cat.bands)
    test = [Source.from_catalog(cat, i, space.bands) for i in range(n)]
    train = [Source.from_catalog(cat, i, space.bands) for i in range(n, n + n_train)]
    return space, test, train, catalog, ini


def bench_search(
    catalog: str | Path | None = None,
    n: int = 20,
    n_train: int = 20,
    tolerance: float = 0.05,
    max_models: int = 190_000,
    ini: str | Path | None = None,
    progress: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    from .knowledge import KnowledgeBase
    from .selfplay import selfplay

    space, test, train, catalog, ini = benchmark_sources(catalog, ini, n, n_train)
    t0 = time.perf_counter()
    ref = reference_chi2(space, test, _cache_path(ini, catalog), progress)
    grid_models = int(np.median([ref[s.id]["models"] for s in test]))
    policy = ExpertPolicy()
    budget = Budget(max_models=max_models)

    def run(kb) -> list[dict[str, Any]]:
        rows = []
        for src in tqdm(test, desc="agent" + (" + knowledge" if kb else ""), unit="src", disable=not progress):
            res = search(src, space, policy, budget, knowledge=kb, seed=seed)
            r = ref[src.id]
            target = r["chi2"] * (1 + tolerance)
            reach = res.models_to_reach(target)
            log_m = {**res.best.execution.row, **res.estimate}["bayes.stellar.m_star_log"]
            rows.append(
                {
                    "id": src.id,
                    "reference_chi2": r["chi2"],
                    "agent_chi2": res.best.chi2,
                    "models_to_tolerance": reach,
                    # a relative tolerance widens as fits worsen: also the models to Δχ² ≤ 2 of the grid's best
                    "models_to_dchi2_2": res.models_to_reach(r["chi2"] + DCHI2_ABSOLUTE),
                    # speed is never bought with wrong answers: the mass against the full grid's
                    "abs_dlogm_vs_grid": float(abs(log_m - r["m_star_log"])),
                    "inside_grid_1sigma": bool(abs(log_m - r["m_star_log"]) <= r["m_star_log_err"]),
                    "models_evaluated": res.models_evaluated,
                    "steps": res.steps,
                    "grid_models": ref[src.id]["models"],
                }
            )
        return rows

    without = run(None)
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(path=Path(tmp) / "kb")
        selfplay(train, space, policy, kb, budget=budget, progress=progress)
        n_rules = kb.count()
        with_kb = run(kb)
        kb.close()

    def fractions(rows):
        return np.array(
            [
                (r["models_to_tolerance"] if r["models_to_tolerance"] is not None else r["models_evaluated"])
                / r["grid_models"]
                for r in rows
            ]
        )

    def agreement(rows, prefix: str = "") -> dict[str, float]:
        reached = [r["models_to_dchi2_2"] for r in rows if r["models_to_dchi2_2"] is not None]
        return {
            f"frac_sources_within_dchi2_2{prefix}": float(len(reached) / len(rows)),
            f"median_fraction_to_dchi2_2{prefix}": float(
                np.median([(r["models_to_dchi2_2"] or r["models_evaluated"]) / r["grid_models"] for r in rows])
            ),
            f"median_abs_dlogm_vs_grid{prefix}": float(np.median([r["abs_dlogm_vs_grid"] for r in rows])),
            f"frac_logm_inside_grid_1sigma{prefix}": float(np.mean([r["inside_grid_1sigma"] for r in rows])),
        }

    f_without, f_with = fractions(without), fractions(with_kb)
    within = np.mean([r["models_to_tolerance"] is not None for r in without])
    within_kb = np.mean([r["models_to_tolerance"] is not None for r in with_kb])
    return {
        "benchmark": "search",
        "catalog": str(catalog),
        "reference_ini": str(ini),
        "sources": n,
        "training_sources": n_train,
        "tolerance": tolerance,
        "grid_models": grid_models,
        "median_fraction_of_grid": float(np.median(f_without)),
        "frac_sources_within_tolerance": float(within),
        "median_fraction_without_knowledge": float(np.median(f_without)),
        "median_fraction_with_knowledge": float(np.median(f_with)),
        "frac_sources_within_tolerance_with_knowledge": float(within_kb),
        "knowledge_reduction": float(1 - np.median(f_with) / np.median(f_without)) if np.median(f_without) else 0.0,
        "median_models_to_tolerance": float(
            np.median([r["models_to_tolerance"] or r["models_evaluated"] for r in without])
        ),
        "median_reduced_chi2_reference": float(np.median([ref[s.id]["chi2_red"] for s in test])),
        **agreement(without),
        **agreement(with_kb, "_with_knowledge"),
        "knowledge_rules": n_rules,
        "seconds": time.perf_counter() - t0,
        "per_source": {"without_knowledge": without, "with_knowledge": with_kb},
    }
