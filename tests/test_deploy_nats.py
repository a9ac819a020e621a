"""Least privilege on NATS: the deployment's own nats-server configuration (deploy/nats/nats.conf
with the generated auth.conf), a real nats-server, the platform run under one user per role.

Every role must be able to do its job (a catalogue through the gateway with knowledge, a watched
job, alerts from the pipeline user, dead letters) with no permission violation logged; and every
user must be refused what is not its job: other roles' subjects, buckets, consumers and inboxes,
stream administration, anonymous access."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nats
import pytest

from mephisto_sed.api.v1 import mephisto_pb2 as pb
from services.common.access import ROLES_WITH_USERS, SETUP_USER, inbox_prefix, password_variable
from services.common.bus import STREAM_DLQ, STREAM_EVENTS
from services.platform import NatsServer, free_port, nats_password, read_stream

from .platform_helpers import learned, start_platform, submit_example

ROOT = Path(__file__).resolve().parents[1]
USERS = (SETUP_USER, *ROLES_WITH_USERS)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """nats-server on deploy/nats/nats.conf with random passwords, topology made by the setup user."""
    tmp = tmp_path_factory.mktemp("secured")
    passwords = {u: nats_password() for u in USERS}  # hex alone can start like a number ("1e5…")
    env = {password_variable(u): p for u, p in passwords.items()}
    server = NatsServer(tmp / "nats", config=ROOT / "deploy" / "nats" / "nats.conf", env=env).start()
    try:
        setup = subprocess.run(
            [sys.executable, "-m", "services.setup", "--nats", server.url, "--nats-user", SETUP_USER, "--wait", "10"],
            env={"NATS_PASSWORD": passwords[SETUP_USER], "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert setup.returncode == 0, setup.stderr[-2000:]
        assert json.loads(setup.stdout)["streams"] == [
            "MEPHISTO_WORK",
            "MEPHISTO_EVENTS",
            "MEPHISTO_DLQ",
            "MEPHISTO_ALERTS",
        ]
        yield server, passwords, tmp
    finally:
        server.cleanup()


def _sample(body: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` with ``labels`` in a Prometheus exposition."""
    total = 0.0
    for line in body.splitlines():
        metric, _, value = line.rpartition(" ")
        if metric.split("{")[0] == name and all(f'{k}="{v}"' in metric for k, v in labels.items()):
            total += float(value)
    return total


def _violations(server: NatsServer) -> list[str]:
    return [line for line in server.log_file.read_text().splitlines() if "Violation" in line]


async def _attempt(url: str, user: str, password: str, action: str, subject: str, refused: bool = False) -> str:
    """Do one thing as ``user``; the server's error for it ('' when it was allowed). The server
    answers a refused PUB/SUB with an asynchronous -ERR: with ``refused`` (expected) wait for it,
    however busy the machine, instead of a fixed pause."""
    errors: list[str] = []
    got = asyncio.Event()

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))
        got.set()

    nc = await nats.connect(
        url, user=user, password=password, error_cb=on_error, inbox_prefix=inbox_prefix(user), allow_reconnect=False
    )
    try:
        if action == "pub":
            await nc.publish(subject, b"{}")
        else:
            await nc.subscribe(subject)
        await nc.flush(timeout=10)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(got.wait(), 30.0 if refused else 0.2)
    finally:
        await nc.close()
    return " ".join(e for e in errors if "ermission" in e)


# what each user must NOT be able to do: (action, subject)
REFUSED = {
    SETUP_USER: [
        ("pub", "mephisto.work.execute"),
        ("pub", "$JS.API.STREAM.DELETE.MEPHISTO_WORK"),
        ("pub", "$KV.mephisto_jobs.j1"),
        ("sub", "mephisto.>"),
    ],
    "gateway": [
        ("pub", "mephisto.work.execute"),
        ("pub", "$KV.mephisto_search.j1"),
        ("pub", "$KV.mephisto_nodes.j1.0"),
        ("pub", "$JS.API.STREAM.DELETE.MEPHISTO_WORK"),
        ("pub", "$JS.API.STREAM.PURGE.MEPHISTO_EVENTS"),
        ("pub", "$JS.API.CONSUMER.MSG.NEXT.MEPHISTO_WORK.mephisto-executor"),
        ("sub", "mephisto.rpc.knowledge"),
        ("sub", "_INBOX_proposer.>"),
    ],
    "proposer": [
        ("pub", "mephisto.work.evaluate"),
        ("pub", "mephisto.alerts.rubin"),
        ("pub", "$KV.mephisto_specs.j1"),  # reads job specs, never writes them
        ("pub", "$JS.API.STREAM.CREATE.MEPHISTO_X"),
        ("pub", "$JS.API.CONSUMER.MSG.NEXT.MEPHISTO_ALERTS.mephisto-alerts"),
        ("sub", "mephisto.rpc.knowledge"),
        ("sub", "_INBOX.>"),
    ],
    "executor": [
        ("pub", "mephisto.work.distill"),
        ("pub", "mephisto.work.advance"),
        ("pub", "mephisto.events.j1"),
        ("pub", "mephisto.dlq.proposer"),
        ("pub", "$KV.mephisto_jobs.j1"),
        ("pub", "$JS.API.STREAM.INFO.KV_mephisto_specs"),
        ("pub", "$JS.API.DIRECT.GET.KV_mephisto_idempotency"),
        ("pub", "$JS.API.CONSUMER.MSG.NEXT.MEPHISTO_WORK.mephisto-proposer"),
        ("pub", "$JS.API.STREAM.DELETE.MEPHISTO_WORK"),
        ("sub", "mephisto.>"),
        ("sub", "_INBOX_gateway.>"),
    ],
    "evaluator": [
        ("pub", "mephisto.work.execute"),
        ("pub", "$KV.mephisto_search.j1"),
        ("pub", "$JS.API.STREAM.MSG.GET.KV_mephisto_nodes"),
        ("pub", "$JS.API.CONSUMER.CREATE.MEPHISTO_WORK.mephisto-executor"),
    ],
    "distiller": [
        ("pub", "mephisto.work.execute"),
        ("pub", "mephisto.rpc.knowledge"),
        ("pub", "$KV.mephisto_search.j1"),
        ("pub", "$KV.mephisto_jobs.j1"),
        ("sub", "mephisto.alerts.>"),
    ],
    "operator": [  # reads events and dead letters, changes nothing
        ("pub", "mephisto.work.advance"),
        ("pub", "mephisto.dlq.executor"),
        ("pub", "$KV.mephisto_jobs.j1"),
        ("pub", "$JS.API.STREAM.PURGE.MEPHISTO_DLQ"),
        ("pub", "$JS.API.CONSUMER.MSG.NEXT.MEPHISTO_DLQ.mephisto-gateway-dlq"),
        ("sub", "mephisto.>"),
    ],
    "pipeline": [
        ("pub", "mephisto.work.advance"),
        ("pub", "$KV.mephisto_jobs.j1"),
        ("pub", "$JS.API.STREAM.INFO.MEPHISTO_ALERTS"),
        ("sub", "mephisto.alerts.>"),
        ("sub", "mephisto.events.>"),
    ],
}


def test_every_user_is_refused_what_is_not_its_job(secured):
    server, passwords, _ = secured
    assert set(REFUSED) == set(USERS)

    async def go() -> None:
        with pytest.raises(Exception, match="(?i)authoriz"):  # no anonymous access
            await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0)
        with pytest.raises(Exception, match="(?i)authoriz"):  # nor with another user's password
            await nats.connect(server.url, user="executor", password=passwords["gateway"], allow_reconnect=False)
        for user, attempts in REFUSED.items():
            for action, subject in attempts:
                err = await _attempt(server.url, user, passwords[user], action, subject, refused=True)
                assert subject.lower() in err.lower(), f"{user} was allowed to {action} {subject}"
        # the same checks can tell allowed from refused: each user's own subjects go through
        allowed = {
            "executor": ("pub", "mephisto.work.evaluate"),
            "pipeline": ("pub", "mephisto.alerts.rubin"),
            "distiller": ("sub", "mephisto.rpc.knowledge"),
            "gateway": ("pub", "$KV.mephisto_jobs.probe"),
            SETUP_USER: ("pub", "$JS.API.STREAM.INFO.MEPHISTO_WORK"),
        }
        for user, (action, subject) in allowed.items():
            assert await _attempt(server.url, user, passwords[user], action, subject) == "", (user, subject)

    asyncio.run(go())


@pytest.mark.slow
def test_the_platform_does_its_job_under_per_role_users(secured):
    server, passwords, tmp = secured
    before = len(_violations(server))
    roles = ("gateway", "proposer", "executor", "evaluator", "distiller")
    metrics = {r: free_port() for r in roles}  # each role's Prometheus endpoint, as deployed
    role_env = {
        r: {"NATS_USER": r, "NATS_PASSWORD": passwords[r], "MEPHISTO_METRICS_PORT": str(metrics[r])} for r in roles
    }
    plat = start_platform(
        server.url, tmp / "run", role_env=role_env, MEPHISTO_NATS_SETUP="0", MEPHISTO_USE_KNOWLEDGE="1"
    )
    try:
        submit_example(plat, tmp / "out", max_steps=6)  # WatchJob too: the gateway's ordered consumer

        # an alert from the pipeline user becomes a job; a malformed one a dead letter
        async def alerts() -> None:
            nc = await nats.connect(
                server.url, user="pipeline", password=passwords["pipeline"], inbox_prefix=inbox_prefix("pipeline")
            )
            js = nc.jetstream()
            good = {
                "alertId": 1,
                "diaObject": {"diaObjectId": 42, "redshift": 0.5},
                "fluxes": [{"band": b, "psfFlux": 1e4, "psfFluxErr": 1e2} for b in "gri"],
            }
            await js.publish("mephisto.alerts.rubin", json.dumps(good).encode())
            await js.publish("mephisto.alerts.rubin", b"{not json")
            await nc.close()

        asyncio.run(alerts())
        op = {"user": "operator", "password": passwords["operator"]}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            dl = read_stream(server.url, STREAM_DLQ, "mephisto.dlq.alerts", **op)
            events = [
                pb.ProgressEvent.FromString(d)
                for _, _, d in read_stream(server.url, STREAM_EVENTS, "mephisto.events.>", **op)
            ]
            alert_done = [e for e in events if e.source_id == "42" and e.kind == "done"]
            dl = [h["Mephisto-Reason"] for _, h, d in dl if d == b"{not json"]  # (the other test's probes too)
            if dl and alert_done:
                break
            time.sleep(0.5)
        assert len(dl) == 1 and "not JSON" in dl[0], dl
        assert alert_done, "the pipeline's alert did not become a finished job"
        # knowledge: the distillers answered the gateway (and the proposers) over request/reply
        entries = learned(plat, {"mock000", "mock001"})
        assert {s for e in entries for s in e.sources} >= {"mock000", "mock001"}
        assert plat.alive()
        # what the dashboards read: the roles' own /metrics, with this run's numbers
        scraped = {
            r: urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=10).read().decode()
            for r, p in metrics.items()
        }
        assert _sample(scraped["gateway"], "mephisto_jobs_submitted_total") >= 3  # two sources and the alert
        assert _sample(scraped["proposer"], "mephisto_jobs_completed_total", status="done") >= 3
        assert _sample(scraped["executor"], "mephisto_models_evaluated_total") > 1000
        assert _sample(scraped["executor"], "mephisto_step_latency_milliseconds_count") >= 6
        assert "mephisto_queue_lag{" in scraped["evaluator"]
    finally:
        plat.stop()
    violations = _violations(server)[before:]
    assert violations == [], "\n".join(violations[:10])


def test_a_role_that_may_not_create_streams_says_how_to_create_them(tmp_path):
    """MEPHISTO_NATS_SETUP=0 before the setup job has run: a clear exit, not a hang; after
    `python -m services.setup` (twice: idempotent) the same role starts."""
    server = NatsServer(tmp_path / "nats").start()
    try:
        env = {**os.environ, "MEPHISTO_NATS_SETUP": "0"}
        cmd = [sys.executable, "-m", "services.executor", "--nats", server.url, "--port-file", str(tmp_path / "port")]
        early = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert early.returncode != 0 and "python -m services.setup" in early.stderr, early.stderr[-1500:]
        assert "Traceback" not in early.stderr  # a message, not a crash
        for _ in range(2):
            setup = [sys.executable, "-m", "services.setup", "--nats", server.url]
            assert subprocess.run(setup, capture_output=True, timeout=60, cwd=ROOT).returncode == 0
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            deadline = time.monotonic() + 60
            while not (tmp_path / "port").exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert proc.poll() is None and (tmp_path / "port").exists()
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        server.cleanup()
