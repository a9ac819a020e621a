"""`mephisto-sed bench llm`: tokens and calls per source and client overhead per call through a
real Triton server, over real galaxies, with the expert policy on the same sources for reference."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..agents.agentfit import agent_fit_catalog
from ..agents.search import Budget
from ..agents.space import default_space
from ..catalog import Catalog
from .backends import Resilient, TritonBackend
from .llm_policy import LLMPolicy


def bench_llm(
    catalog: Catalog, triton_url: str | None = None, budget: Budget | None = None, model: str = "ensemble"
) -> dict[str, Any]:
    from .scripted import ScriptedTriton

    budget = budget or Budget()
    space = default_space()
    space.bands = list(catalog.bands)
    if triton_url is None:
        with ScriptedTriton() as url:
            return bench_llm(catalog, url, budget, model) | {"server": "PyTriton (CPU), scripted responder"}
    backend = TritonBackend(triton_url, model, timeout=60)
    policy = LLMPolicy([Resilient(backend)])
    # client overhead: a round trip of an empty-ish request through the real server (scripted: no compute)
    lat = []
    for _ in range(20):
        t0 = time.perf_counter()
        backend.complete([{"role": "user", "content": "ping"}], max_tokens=8)
        lat.append((time.perf_counter() - t0) * 1e3)
    t0 = time.perf_counter()
    llm = agent_fit_catalog(catalog, space, policy=policy, budget=budget, progress=False)
    t_llm = time.perf_counter() - t0
    expert = agent_fit_catalog(catalog, space, budget=budget, progress=False)
    n = len(catalog)
    s = policy.stats
    steps = int(np.sum(llm.table["steps"]))
    tokens = s.prompt_tokens + s.completion_tokens
    chi_llm = np.asarray(llm.table["best.reduced_chi_square"], float)
    chi_exp = np.asarray(expert.table["best.reduced_chi_square"], float)
    return {
        "sources": n,
        "server": f"Triton at {triton_url}",
        "model": model,
        "calls_per_source": round(s.calls / n, 2),
        "tokens_per_source": round(tokens / n, 1),
        "tokens_per_step": round(tokens / max(steps, 1), 1),
        "prompt_tokens_per_call": round(s.prompt_tokens / max(s.calls, 1), 1),
        "completion_tokens_per_call": round(s.completion_tokens / max(s.calls, 1), 1),
        "tokens_estimated": s.estimated_tokens,
        "max_tokens_per_source": int(np.max(llm.table["tokens"])),
        "client_overhead_ms_per_call_p50": round(float(np.percentile(lat, 50)), 2),
        "client_overhead_ms_per_call_p99": round(float(np.percentile(lat, 99)), 2),
        "llm_latency_ms_per_call": round(s.latency_s / max(s.calls, 1) * 1e3, 2),
        "fallbacks": s.fallbacks,
        "rejected_actions": s.rejected_actions,
        "median_reduced_chi2_llm": round(float(np.nanmedian(chi_llm)), 3),
        "median_reduced_chi2_expert": round(float(np.nanmedian(chi_exp)), 3),
        "seconds_llm_run": round(t_llm, 1),
    }
