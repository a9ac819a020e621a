"""`mephisto-sed bench backbones`: the seed's cross-LLM evaluation. The same N COSMOS galaxies and
budget with each backbone — the expert policy, and each LLM in free and choose mode — without and
with knowledge learned by the expert's self-play on other galaxies of the same set. Per backbone:
the fraction within tolerance of the full grid's best χ² (and within Δχ² ≤ 2), median models,
tokens (the model's own counts) and seconds per source, $ per source from the cost model, and what
became of the LLM's proposals (parsed, used, rejected, fallen back and why).

With no ``--llm`` it serves the local real model (Gemma 3 270M on llama.cpp, ``local_llama``)."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..agents.bench_search import DCHI2_ABSOLUTE, _cache_path, benchmark_sources, reference_chi2
from ..agents.policy import ExpertPolicy
from ..agents.search import Budget, SearchResult, search
from .backends import backend_from_url
from .llm_policy import CostModel, LLMPolicy


@contextlib.contextmanager
def _llm_urls(urls: list[str]) -> Iterator[list[str]]:
    if urls:
        yield urls
        return
    from .local_llama import MODEL_NAME, LlamaServer

    with LlamaServer() as base:
        yield [base.replace("http://", "openai://") + f"?model={MODEL_NAME}"]


def _label(url: str) -> str:
    """A backbone's name: its model (``?model=``) or Triton model, not the ephemeral port."""
    from urllib.parse import parse_qs, urlparse

    u = urlparse(url)
    return parse_qs(u.query).get("model", [""])[0] or f"{u.scheme}:{u.path.strip('/') or u.netloc}"


def _row(res: SearchResult, ref: dict[str, Any], tolerance: float, seconds: float) -> dict[str, Any]:
    return {
        "id": res.source.id,
        "within_tolerance": bool(res.best.chi2 <= ref["chi2"] * (1 + tolerance)),
        "within_dchi2_2": bool(res.best.chi2 <= ref["chi2"] + DCHI2_ABSOLUTE),
        "models": res.models_evaluated,
        "tokens": res.tokens,
        "cost_usd": res.cost_usd,
        "seconds": seconds,
        "llm_steps": sum(str(s["rule"]).startswith("llm:") for s in res.trace),
    }


def _summary(name: str, rows: list[dict[str, Any]], policy: Any, budget: Budget) -> dict[str, Any]:
    n = len(rows)
    out: dict[str, Any] = {
        "name": name,
        "frac_within_tolerance": float(np.mean([r["within_tolerance"] for r in rows])),
        "frac_within_dchi2_2": float(np.mean([r["within_dchi2_2"] for r in rows])),
        "median_models": float(np.median([r["models"] for r in rows])),
        "tokens_per_source": float(np.mean([r["tokens"] for r in rows])),
        "max_tokens_per_source": int(max(r["tokens"] for r in rows)),
        "token_budget": budget.max_tokens,
        "seconds_per_source": float(np.mean([r["seconds"] for r in rows])),
        "usd_per_source": float(np.mean([r["cost_usd"] for r in rows])),
    }
    if not isinstance(policy, LLMPolicy):
        return out | {"parse_rate": None, "proposals_used": None, "fallbacks": 0, "calls_per_source": 0.0}
    s = policy.stats
    used = sum(r["llm_steps"] for r in rows)
    return out | {
        "calls_per_source": s.calls / n,
        "parse_rate": s.parse_rate,
        "llm_actions": s.llm_actions,
        "proposals_used": used / s.llm_actions if s.llm_actions else 0.0,  # share that ran as a step
        "rejected_actions": s.rejected_actions,  # refused by the schema (the search refuses more)
        "fallbacks": s.fallbacks,
        "fallback_share": s.fallbacks / max(s.calls + s.fallbacks, 1),
        "fallback_reasons": dict(s.fallback_reasons),
        "seconds_per_call": s.latency_s / max(s.calls, 1),
        "tokens_exact": not s.estimated_tokens,
        "overruns": s.overruns,
    }


def bench_backbones(
    llm_urls: list[str] | None = None,
    n: int = 6,
    n_train: int = 10,
    max_models: int = 40_000,
    max_tokens: int = 10_000,
    tolerance: float = 0.05,
    catalog: str | Path | None = None,
    ini: str | Path | None = None,
    cost: CostModel | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    space, test, train, catalog, ini = benchmark_sources(catalog, ini, n, n_train)
    ref = reference_chi2(space, test, _cache_path(ini, catalog), progress)
    budget = Budget(max_models=max_models, max_tokens=max_tokens)
    backbones = []
    with tempfile.TemporaryDirectory() as tmp, _llm_urls(list(llm_urls or [])) as urls:
        from ..agents.knowledge import KnowledgeBase
        from ..agents.selfplay import selfplay

        kb = KnowledgeBase(path=Path(tmp) / "kb")
        selfplay(train, space, ExpertPolicy(), kb, budget=budget, progress=progress)
        arms: list[tuple[str, Any]] = [("expert", lambda: ExpertPolicy())]
        for url in urls:
            for mode in ("free", "choose"):
                arms.append(
                    (
                        f"{url.split('?')[0]} {mode}",
                        lambda u=url, m=mode: LLMPolicy([backend_from_url(u)], mode=m, cost=cost),
                    )
                )
        for name, make in arms:
            for knowledge in (None, kb):
                policy = make()
                rows = []
                label = name + (" + knowledge" if knowledge else "")
                for src in tqdm(test, desc=label, unit="src", disable=not progress):
                    t0 = time.perf_counter()
                    res = search(src, space, policy, budget, knowledge=knowledge)
                    rows.append(_row(res, ref[src.id], tolerance, time.perf_counter() - t0))
                backbones.append(_summary(label, rows, policy, budget))
        kb.close()
    return {
        "benchmark": "backbones",
        "catalog": str(catalog),
        "reference_ini": str(ini),
        "sources": n,
        "train_sources": n_train,
        "max_models": max_models,
        "tolerance": tolerance,
        "backbones": backbones,
    }
