"""Helpers for the platform tests: a real nats-server, the services as real processes, gRPC clients."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import nats
import numpy as np
import pytest
from nats.js.errors import KeyNotFoundError

from gateway.client import GatewayClient
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from services.common.bus import DLQ, KV_DISTILLED, STREAM_DLQ
from services.platform import ROLES, Platform, read_stream

TOKEN = "test-token"


def start_platform(
    nats_url: str, workdir: Path, executors: int = 1, role_env: dict[str, dict[str, str]] | None = None, **env: str
) -> Platform:
    replicas = {r: 1 for r in ROLES}
    replicas["executor"] = executors
    base_env = {
        "MEPHISTO_ACK_WAIT": "3",
        "MEPHISTO_USE_KNOWLEDGE": "0",
        "MEPHISTO_KNOWLEDGE": str(workdir / "knowledge"),
        "MEPHISTO_LOG_LEVEL": "DEBUG",
        "MEPHISTO_DRAIN_SECONDS": "20",
    }
    return Platform(
        nats_url, [TOKEN], workdir, replicas=replicas, env={**base_env, **env}, role_env=role_env or {}
    ).start()


def submit_example(plat: Platform, out: Path, max_steps: int = 8) -> None:
    """`mephisto-sed submit` of the example catalogue's first two sources, watched; both must finish."""
    proc = subprocess.run(
        [sys.executable, "-m", "mephisto_sed.cli", "submit", "--limit", "2", "--max-models", "20000"]
        + ["--max-steps", str(max_steps), "--gateway", plat.gateway, "--token", TOKEN, "--watch"]
        + ["--out", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 done, 0 failed" in proc.stdout
    assert "[done]" in proc.stderr + proc.stdout  # --watch streamed a job's steps (WatchJob)


def learned(plat: Platform, sources: set[str], timeout: float = 30.0) -> list[pb.KnowledgeEntry]:
    """Knowledge entries through the gateway, once the distillers have learned from ``sources``."""
    c = client(plat)
    deadline = time.monotonic() + timeout
    while True:
        req = pb.SearchKnowledgeRequest(limit=50)
        entries = list(c.stub.SearchKnowledge(req, metadata=c.metadata, timeout=10).entries)
        if {s for e in entries for s in e.sources} >= sources or time.monotonic() > deadline:
            return entries
        time.sleep(0.3)


def wait_distilled(nats_url: str, job_ids: list[str], timeout: float = 60.0) -> None:
    """Until the distillers have marked every job of ``job_ids`` as learned from (KV_DISTILLED)."""

    async def go() -> None:
        nc = await nats.connect(nats_url)
        kv = await nc.jetstream().key_value(KV_DISTILLED)
        deadline = time.monotonic() + timeout
        try:
            for job in job_ids:
                while True:
                    try:
                        await kv.get(job)
                        break
                    except KeyNotFoundError:
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"job {job} not distilled in {timeout:.0f} s") from None
                        await asyncio.sleep(0.2)
        finally:
            await nc.close()

    asyncio.run(go())


def client(plat: Platform) -> GatewayClient:
    return GatewayClient(plat.gateway, TOKEN)


def wait_jobs(c: GatewayClient, job_ids: list[str], timeout: float = 300.0) -> pb.GetResultsReply:
    deadline = time.monotonic() + timeout
    while True:
        reply = c.results(job_ids)
        if all(j.status == pb.JOB_STATUS_FAILED for j in reply.pending):
            return reply
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(reply.pending)} jobs unfinished: {[j.status for j in reply.pending][:5]}")
        time.sleep(0.3)


def dead_letters(nats_url: str) -> list[tuple[str, dict[str, str], bytes]]:
    return read_stream(nats_url, STREAM_DLQ, f"{DLQ}.>")


def publish_raw(nats_url: str, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> None:
    async def go() -> None:
        nc = await nats.connect(nats_url)
        await nc.jetstream().publish(subject, payload, headers=headers)
        await nc.close()

    asyncio.run(go())


def handled_counts(plat: Platform, role: str) -> list[int]:
    """Messages each replica of ``role`` handled (from its JSON debug log)."""
    out = []
    for p in plat.processes:
        if p.role != role:
            continue
        n = 0
        for line in p.log.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            n += rec.get("msg", "").startswith("handled ")
        out.append(n)
    return out


def serving(address: str, service: str = "") -> bool:
    """The containers' health probe (services.healthcheck) against ``address``."""
    from services.healthcheck import check

    return check(address, service, timeout=10)


def row_differences(a: dict, b: dict) -> list[str]:
    """What differs between two result rows (none: equal). Exact, but for the last bits of floats: BLAS sums in another order with another thread count
    (the services run one BLAS thread each). Every decision (steps, models, modules) must match."""
    diff = []
    for k in a.keys() | b.keys():
        x, y = a.get(k), b.get(k)
        # a column only some rows have (other_redshift.* of an anomaly) is NaN in a table's other rows
        if (x is None and isinstance(y, float) and np.isnan(y)) or (y is None and isinstance(x, float) and np.isnan(x)):
            continue
        if isinstance(x, float) and isinstance(y, float):
            # an error of a nearly constant parameter is sqrt(<x²> - <x>²): rounding noise
            scale = abs(a.get(k[:-4], 0.0)) if k.endswith("_err") else 0.0
            if (np.isnan(x) and np.isnan(y)) or x == pytest.approx(y, rel=1e-9, abs=1e-6 * scale + 1e-300):
                continue
        if x != y:
            diff.append(f"{k}: {x!r} != {y!r}")
    return diff
