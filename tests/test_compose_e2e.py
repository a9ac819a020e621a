"""The deployment for real: the images built from deploy/Dockerfile and the compose stack brought up
in containers (rootful podman, docker-compose v2; `bash deploy/e2e/prepare.sh` makes the images).

Runs when MEPHISTO_E2E=1 (CI sets it after prepare.sh) and then fails, never skips, when anything
is missing; without it the module is skipped with that reason. The stack runs with generated
passwords (the development defaults are refused), and the test talks to it only through what an
operator has: the published gateway port, NATS as the operator user, Prometheus' HTTP API, the
containers' logs and SIGKILL of a container's process (services/compose_stack.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from astropy.table import Table

from gateway.client import GatewayClient, catalog_requests
from mephisto_sed.agents.agentfit import agent_fit_catalog
from mephisto_sed.agents.search import Budget
from mephisto_sed.agents.space import default_space
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.catalog import read_catalog
from mephisto_sed.cli import example_catalog_path
from services.common.bus import STREAM_WORK
from services.compose_stack import ROLES, ROOT, ComposeStack
from services.healthcheck import check

from .platform_helpers import row_differences

BUDGET = dict(max_models=20_000, max_steps=8)

pytestmark = pytest.mark.skipif(
    os.environ.get("MEPHISTO_E2E") != "1",
    reason="the compose stack in containers: bash deploy/e2e/prepare.sh, then MEPHISTO_E2E=1",
)


def _wait(what: str, ok, timeout: float = 180.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        got = ok()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


@pytest.fixture(scope="module")
def stack() -> Iterator[ComposeStack]:
    # the in-process fit it is compared with starts with no knowledge (the distiller still learns)
    s = ComposeStack.configured(MEPHISTO_USE_KNOWLEDGE="0")
    try:
        s.up()
        _wait("the gateway to serve on its published port", lambda: check(s.gateway, timeout=3))
        for role in ROLES:
            _wait(f"{role} to pass its healthcheck", lambda role=role: s.healthy(role))
        yield s
    finally:
        (ROOT / "out").mkdir(exist_ok=True)
        (ROOT / "out" / "compose-e2e.log").write_text(s.logs())
        s.down()


def _cosmos(cosmos_dir: Path, n: int):
    cat = read_catalog(cosmos_dir / "cosmos_specz_compilation_for_cigale_2.50_z_3.00.txt", on_unknown="skip")
    return cat.select(slice(0, n))


def _space(cat):
    space = default_space()
    space.bands = list(cat.bands)
    return space


def _cell(value, remote):
    """A results.fits cell as the row's JSON has it: a masked (empty) cell is the JSON's empty value."""
    if value is np.ma.masked:
        empty = remote is None or remote == "" or (isinstance(remote, float) and np.isnan(remote))
        return remote if empty else "<empty in results.fits>"
    return value.item() if hasattr(value, "item") else value


def _wait_results(c: GatewayClient, job_ids: list[str], timeout: float = 600) -> pb.GetResultsReply:
    def done() -> pb.GetResultsReply | None:
        try:
            reply = c.results(job_ids)
        except grpc.RpcError as exc:  # NATS restarting under the gateway
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
            return None
        return reply if all(j.status == pb.JOB_STATUS_FAILED for j in reply.pending) else None

    return _wait(f"{len(job_ids)} jobs to finish", done, timeout=timeout, every=1.0)


def test_the_stack_refuses_what_an_operator_must_not_get_by_default(stack):
    # a wrong token at the published port
    bad = GatewayClient(stack.gateway, "not-the-token")
    with pytest.raises(grpc.RpcError) as err:
        bad.results(["x"])
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # a role started with a development password refuses to start, naming what to set
    image = f"localhost/mephisto-sed/executor:{stack.env['E2E_TAG']}"
    run = stack.podman("run", "--rm", "-e", "NATS_PASSWORD=dev-executor", image, check=False)
    assert run.returncode != 0 and "NATS_PASSWORD" in run.stdout + run.stderr, run.stderr[-500:]
    # every published port on loopback only
    for line in stack.podman("ps", "--format", "{{.Names}} {{.Ports}}").stdout.splitlines():
        for binding in re.findall(r"([\d.]+):\d+->", line):
            assert binding == "127.0.0.1", line


def test_cosmos_galaxies_through_the_published_port_equal_the_in_process_fit(stack, cosmos_dir, tmp_path):
    cat = _cosmos(cosmos_dir, 10)
    c = stack.client()
    job_ids = list(c.submit(catalog_requests(cat, _space(cat).bands, pb.Budget(**BUDGET))[0]).job_ids)
    reply = _wait_results(c, job_ids)
    assert not reply.pending and len(reply.results) == 10, [j.error for j in reply.pending]
    remote = {json.loads(r.row_json)["id"]: json.loads(r.row_json) for r in reply.results}
    # the in-process fit in the same image: `mephisto-sed fit` of the cli image
    out = tmp_path / "fit"
    out.mkdir(mode=0o777)
    out.chmod(0o777)  # the image runs as uid 10001
    data = cosmos_dir / "cosmos_specz_compilation_for_cigale_2.50_z_3.00.txt"
    stack.podman(
        "run", "--rm", "-v", f"{data}:/data/cat.txt:ro", "-v", f"{out}:/out",
        f"localhost/mephisto-sed/cli:{stack.env['E2E_TAG']}", "fit", "/data/cat.txt", "--skip-unknown-bands",
        "--limit", "10", "--max-models", str(BUDGET["max_models"]), "--max-steps", str(BUDGET["max_steps"]),
        "--no-knowledge", "--no-plots", "--out", "/out", "-q",
    )  # fmt: skip
    local = Table.read(out / "results.fits")
    assert len(local) == 10
    for row in local:
        theirs = remote[str(row["id"])]
        expected = {k: _cell(row[k], theirs.get(k)) for k in local.colnames}
        diff = row_differences(theirs, expected)
        assert not diff, diff[:5]
    # and this machine's own in-process fit, column by column: an image is another Python and libm,
    # whose last bits once chose which of two steps with the same best χ² the error estimate read
    here = agent_fit_catalog(cat, _space(cat), budget=Budget(**BUDGET), progress=False).table
    for row in here:
        expected = {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(here.colnames, row)}
        diff = row_differences(remote[str(expected["id"])], expected)
        assert not diff, diff[:5]


def test_kill_9_the_executor_and_a_nats_node_mid_run_every_job_done_exactly_once(stack):
    cat = read_catalog(example_catalog_path()).select(slice(0, 8))
    c = stack.client()
    reqs = catalog_requests(cat, _space(cat).bands, pb.Budget(max_models=60_000, max_steps=14))
    job_ids = list(c.submit(reqs[0]).job_ids)

    def steps_done() -> int:
        return sum(e.kind == "step" for j in job_ids for e in stack.events().get(j, []))

    _wait("the first steps", lambda: steps_done() >= 3, every=0.2)
    stack.crash("executor")
    before_nats = steps_done()
    _wait("steps after the executor was killed", lambda: steps_done() >= before_nats + 3, every=0.2)
    node = stack.stream_leader(STREAM_WORK)  # the node leading the work queue: the hardest one to lose
    stack.crash(node)
    reply = _wait_results(c, job_ids)
    assert sorted(r.job_id for r in reply.results) == sorted(job_ids), [j.error for j in reply.pending]
    events = stack.events()
    for j in job_ids:
        steps = [e.step for e in events[j] if e.kind == "step"]
        assert sum(e.kind == "done" for e in events[j]) == 1, (j, [e.kind for e in events[j]])
        assert len(steps) == len(set(steps)), f"{j}: a step was recorded twice"
    # restart policy brought both back; the platform still serves
    for service in ("executor", node):
        state = stack.podman("inspect", "--format", "{{.State.Status}} {{.RestartCount}}", stack.container(service))
        status, restarts = state.stdout.split()
        assert status == "running" and int(restarts) >= 1, (service, state.stdout)
    assert check(stack.gateway, timeout=10)


def test_prometheus_scrapes_every_role_and_every_dashboard_query_has_data(stack):
    cat = read_catalog(example_catalog_path()).select(slice(0, 1))  # work to see (latency histograms)
    c = stack.client()
    assert _wait_results(c, list(c.submit(catalog_requests(cat, _space(cat).bands, pb.Budget(**BUDGET))[0]).job_ids))

    def every_role_up() -> bool:
        up = {r["metric"].get("service"): r["value"][1] for r in stack.query('up{job="mephisto"}')}
        return all(up.get(role) == "1" for role in ROLES)

    _wait("Prometheus to scrape every role", every_role_up, every=1.0)
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "mephisto.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(queries) >= 10

    empty: list[str] = []

    def all_have_data() -> bool:
        empty[:] = [q for q in queries if not stack.query(q)]
        return not empty

    # rate() needs two scrapes after the work above: wait for them rather than for a fixed time
    with contextlib.suppress(AssertionError):
        _wait("data for every dashboard query", all_have_data, timeout=120, every=2.0)
    assert not empty, f"dashboard queries without data: {empty}"


def test_one_jobs_trace_reaches_the_collector_with_spans_from_all_five_roles(stack):
    cat = read_catalog(example_catalog_path()).select(slice(0, 1))
    c = stack.client()
    job_id = c.submit(catalog_requests(cat, _space(cat).bands, pb.Budget(**BUDGET))[0]).job_ids[0]
    assert _wait_results(c, [job_id]).results

    def services_in_trace() -> set[str]:
        spans = _collector_spans(stack.podman("logs", stack.container("otel-collector")).stdout)
        traces = {trace for _, trace, job in spans if job == job_id}
        return {service for service, trace, _ in spans if trace in traces}

    expected = {f"mephisto-{role}" for role in ROLES}
    # the distiller learns after the result is out, and spans are exported in batches
    _wait("the job's spans from every role", lambda: services_in_trace() >= expected, timeout=120, every=1.0)


def _collector_spans(log: str) -> list[tuple[str, str, str]]:
    """(service.name, trace id, mephisto.job.id or '') of every span rotel's debug log shows."""
    spans: list[tuple[str, str, str]] = []
    service = ""
    for line in log.splitlines():
        if m := re.search(r"-> service\.name: Str\((.*)\)", line):
            service = m.group(1)
        elif m := re.match(r"\s*Trace ID\s*: (\w+)", line):
            spans.append((service, m.group(1), ""))
        elif (m := re.search(r"-> mephisto\.job\.id: Str\((.*)\)", line)) and spans:
            spans[-1] = (spans[-1][0], spans[-1][1], m.group(1))
    return spans
