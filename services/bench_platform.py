"""`mephisto-sed bench platform`: sources per hour end to end through the gateway and NATS against
the same searches in-process, in the same run (a ratio, since these machines are noisy)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mephisto_sed.agents.agentfit import agent_fit_catalog
from mephisto_sed.agents.search import Budget
from mephisto_sed.agents.space import SearchSpace, default_space
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.catalog import Catalog

from .common.bus import EVENTS, STREAM_EVENTS
from .platform import ROLES, NatsServer, Platform, read_stream


def _events(nats_url: str) -> list[pb.ProgressEvent]:
    return [pb.ProgressEvent.FromString(data) for _, _, data in read_stream(nats_url, STREAM_EVENTS, f"{EVENTS}.>")]


def bench_platform(
    catalog: Catalog,
    space: SearchSpace | None = None,
    budget: Budget | None = None,
    executors: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    from gateway.client import GatewayClient, catalog_requests, run_catalog

    budget = budget or Budget()
    if space is None:
        space = default_space()
        space.bands = list(catalog.bands)
    t0 = time.perf_counter()
    local = agent_fit_catalog(catalog, space, budget=budget, progress=progress)
    t_local = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="mephisto-bench-") as tmp:
        nats = NatsServer(Path(tmp) / "nats").start()
        replicas = {r: 1 for r in ROLES}
        replicas["executor"] = executors
        env = {"MEPHISTO_USE_KNOWLEDGE": "0", "MEPHISTO_KNOWLEDGE": str(Path(tmp) / "kb")}
        plat = Platform(nats.url, ["bench"], Path(tmp) / "run", replicas=replicas, env=env).start()
        try:
            c = GatewayClient(plat.gateway, "bench")
            pb_budget = pb.Budget(
                max_models=budget.max_models, max_steps=budget.max_steps, max_seconds=budget.max_seconds
            )
            reqs = catalog_requests(catalog, space.bands, pb_budget)
            sub = run_catalog(c, reqs, progress=progress, poll=0.5)
            c.close()
            events = _events(nats.url)
        finally:
            plat.stop()
            nats.cleanup()
    # step latency: time between consecutive progress events of a job (one advance -> execute ->
    # evaluate -> advance round trip, compute included)
    by_job: dict[str, list[float]] = {}
    for ev in events:
        if ev.kind in ("queued", "step", "done"):
            by_job.setdefault(ev.job_id, []).append(ev.time_unix)
    lat = np.concatenate([np.diff(sorted(t)) for t in by_job.values() if len(t) > 1]) * 1e3
    same = sum(
        r.source_id == str(row["id"])
        and r.steps == int(row["steps"])
        and r.models_evaluated == int(row["models_evaluated"])
        for r, row in zip(sub.results, local.table)
    )
    n = len(catalog)
    return {
        "sources": n,
        "executors": executors,
        "budget": {"max_models": budget.max_models, "max_steps": budget.max_steps},
        "sources_per_hour": round(n / sub.seconds * 3600, 1),
        "in_process_sources_per_hour": round(n / t_local * 3600, 1),
        "overhead_ratio": round(sub.seconds / t_local, 3),
        "step_latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "step_latency_ms_p99": round(float(np.percentile(lat, 99)), 1),
        "steps": int(sum(r.steps for r in sub.results)),
        "failed": len(sub.failed),
        "results_identical_to_in_process": same,
        "platform_seconds": round(sub.seconds, 2),
        "in_process_seconds": round(t_local, 2),
    }
