"""`mephisto-sed bench chaos`: a batch through `mephisto-sed up` while its roles, the gateway and
nats-server are killed with SIGKILL at random moments, against the same batch without faults in
the same run.

Figures: ``jobs``, ``done``, ``failed``, ``lost`` (neither done nor failed at the deadline),
``duplicated`` (jobs announced done more than once), ``restarts`` (by `up`'s supervisor),
``kills``, ``wall_ratio_vs_no_faults``, and ``results_equal_to_no_faults``: the answers must not
change because processes died (same steps, models and best χ²).
"""

from __future__ import annotations

import json
import os
import random
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.catalog import Catalog

from .common.bus import EVENTS, STREAM_EVENTS
from .platform import UpProcess, read_stream

ENV = {"MEPHISTO_ACK_WAIT": "10", "MEPHISTO_USE_KNOWLEDGE": "0", "MEPHISTO_DRAIN_SECONDS": "10"}
COMPARED = ("steps", "models_evaluated", "best.reduced_chi_square")


def _batch(
    data: Path,
    reqs: list[pb.SubmitBatchRequest],
    chaos: random.Random | None,
    timeout: float,
    say: Any,
) -> dict[str, Any]:
    from gateway.client import GatewayClient

    up = UpProcess(data, env={**ENV, "MEPHISTO_KNOWLEDGE": str(data / "knowledge")})
    try:
        up.wait_for("Ctrl-C stops everything.")
        c = GatewayClient(up.gateway, up.token)
        t0 = time.perf_counter()
        job_ids: list[str] = []
        for req in reqs:
            job_ids += list(c.submit(req, timeout=300).job_ids)
        victims = sorted(up.pids())
        order = chaos.sample(victims, len(victims)) if chaos else []  # each one killed at least once
        next_kill = time.monotonic() + (chaos.uniform(1, 3) if chaos else 0)
        kills: list[str] = []
        rows: dict[str, dict[str, Any]] = {}
        failed: set[str] = set()
        deadline = time.monotonic() + timeout
        while len(rows) + len(failed) < len(job_ids) and time.monotonic() < deadline:
            if chaos and time.monotonic() >= next_kill:
                name = order.pop() if order else chaos.choice(victims)
                try:
                    os.kill(up.pids()[name], signal.SIGKILL)
                    kills.append(name)
                    say(f"killed {name}")
                except (ProcessLookupError, KeyError):
                    pass
                next_kill = time.monotonic() + chaos.uniform(2, 5)
            waiting = [j for j in job_ids if j not in rows and j not in failed]
            try:
                reply = c.results(waiting)
            except grpc.RpcError:  # the gateway is down for a moment: ask again
                time.sleep(0.5)
                continue
            for r in reply.results:
                rows[r.job_id] = {"source": r.source_id, **json.loads(r.row_json)}
            failed |= {j.job_id for j in reply.pending if j.status == pb.JOB_STATUS_FAILED}
            up.drain()
            time.sleep(0.5)
        wall = time.perf_counter() - t0
        users = json.loads((data / "nats-users.json").read_text())
        nats_url = next(line.split()[1] for line in up.seen if line.startswith("NATS "))
        done_events: dict[str, int] = {}
        for _, _, payload in read_stream(
            nats_url, STREAM_EVENTS, f"{EVENTS}.>", user="operator", password=users["operator"]
        ):
            ev = pb.ProgressEvent.FromString(payload)
            if ev.kind == "done":
                done_events[ev.job_id] = done_events.get(ev.job_id, 0) + 1
        c.close()
        restarts = up.restarts()
    finally:
        up.stop()
    return {
        "jobs": len(job_ids),
        "done": len(rows),
        "failed": len(failed),
        "lost": len(job_ids) - len(rows) - len(failed),
        "duplicated": sum(n > 1 for n in done_events.values()),
        "kills": kills,
        "restarts": restarts,
        "wall_s": wall,
        "rows": {r["source"]: r for r in rows.values()},
    }


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for k in COMPARED:
        x, y = a.get(k), b.get(k)
        if isinstance(x, float) and isinstance(y, float):
            if abs(x - y) > 1e-9 * max(abs(x), abs(y), 1e-300):
                return False
        elif x != y:
            return False
    return True


def bench_chaos(
    catalog: Catalog,
    budget: pb.Budget,
    seed: int = 0,
    timeout: float = 1200.0,
    progress: bool = False,
) -> dict[str, Any]:
    from gateway.client import catalog_requests

    say = print if progress else (lambda _m: None)
    reqs = catalog_requests(catalog, list(catalog.bands), budget, idempotency_key="chaos")
    with tempfile.TemporaryDirectory(prefix="mephisto-chaos-") as tmp:
        say("batch without faults")
        calm = _batch(Path(tmp) / "calm", reqs, None, timeout, say)
        say("batch with SIGKILLs")
        storm = _batch(Path(tmp) / "storm", reqs, random.Random(seed), timeout, say)
    equal = sum(_same(row, calm["rows"][source]) for source, row in storm["rows"].items() if source in calm["rows"])
    return {
        "benchmark": "chaos",
        "jobs": storm["jobs"],
        "done": storm["done"],
        "failed": storm["failed"],
        "lost": storm["lost"],
        "duplicated": storm["duplicated"],
        "restarts": storm["restarts"],
        "kills": len(storm["kills"]),
        "killed": sorted(set(storm["kills"])),
        "wall_s": round(storm["wall_s"], 1),
        "wall_s_no_faults": round(calm["wall_s"], 1),
        "wall_ratio_vs_no_faults": round(storm["wall_s"] / calm["wall_s"], 2),
        "results_equal_to_no_faults": equal,
        "no_faults": {k: calm[k] for k in ("jobs", "done", "failed", "lost", "duplicated")},
    }
