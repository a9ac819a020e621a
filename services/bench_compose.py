"""`mephisto-sed bench compose`: the compose stack in containers (deploy/e2e/prepare.sh first) with
one executor and with three, the same COSMOS sources through the published gateway port; sources
per hour of each, their ratio, and whether both gave the same answers. On a 2-core machine the
fitting already fills the cores with one executor, so the ratio says what more replicas cost or
gain there, not what a cluster would."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.catalog import Catalog

from .compose_stack import ComposeStack


def _run(stack: ComposeStack, catalog: Catalog, bands: list[str], budget: pb.Budget) -> tuple[float, dict[str, Any]]:
    from gateway.client import catalog_requests, run_catalog

    from .healthcheck import check

    deadline = time.monotonic() + 300
    while not check(stack.gateway, timeout=3):
        if time.monotonic() > deadline:
            raise TimeoutError("the gateway never served")
        time.sleep(0.5)
    c = stack.client()
    t0 = time.perf_counter()
    sub = run_catalog(c, catalog_requests(catalog, bands, budget), progress=False, poll=0.5)
    seconds = time.perf_counter() - t0
    c.close()
    if sub.failed:
        raise RuntimeError(f"{len(sub.failed)} jobs failed")
    rows = {}
    for r in sub.results:
        row = json.loads(r.row_json)
        rows[str(row["id"])] = (row["steps"], row["models_evaluated"], round(row["best.reduced_chi_square"], 9))
    return seconds, rows


def bench_compose(catalog: Catalog, budget: pb.Budget, scales: tuple[int, ...] = (1, 3)) -> dict[str, Any]:
    bands = list(catalog.bands)
    stack = ComposeStack.configured(MEPHISTO_USE_KNOWLEDGE="0")  # knowledge would make runs differ
    out: dict[str, Any] = {"benchmark": "compose", "n": len(catalog), "cpu_count": os.cpu_count(), "runs": []}
    answers = []
    try:
        for n in scales:
            stack.up("--scale", f"executor={n}")
            seconds, rows = _run(stack, catalog, bands, budget)
            answers.append(rows)
            out["runs"].append({"executors": n, "seconds": seconds, "sources_per_hour": 3600 * len(catalog) / seconds})
    finally:
        stack.down()
    first = out["runs"][0]["sources_per_hour"]
    for run in out["runs"]:
        run["ratio_to_first"] = run["sources_per_hour"] / first
    out["same_answers"] = all(a == answers[0] for a in answers[1:])
    return out
