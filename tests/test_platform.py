"""The platform for real: nats-server, the four services and the gateway as separate processes,
gRPC calls through the gateway. Jobs must complete, match the in-process fit, survive a killed
worker and a restarted nats-server, and bad input must be refused precisely."""

from __future__ import annotations

import json
import os
import signal
import time

import grpc
import pytest

from gateway.client import catalog_requests, run_catalog
from mephisto_sed.agents.agentfit import agent_fit_catalog
from mephisto_sed.agents.search import Budget
from mephisto_sed.agents.space import default_space
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.api.v1 import mephisto_pb2_grpc as pb_grpc
from mephisto_sed.catalog import read_catalog
from mephisto_sed.cli import example_catalog_path
from services.platform import NatsServer, events_by_job

from .platform_helpers import (
    TOKEN,
    client,
    dead_letters,
    handled_counts,
    learned,
    publish_raw,
    row_differences,
    serving,
    start_platform,
    submit_example,
    wait_distilled,
    wait_jobs,
)

BUDGET = dict(max_models=20_000, max_steps=8)


@pytest.fixture
def nats_server(tmp_path):
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.cleanup()


@pytest.fixture
def platform(nats_server, tmp_path):
    plat = start_platform(nats_server.url, tmp_path / "run", executors=2)
    yield plat
    plat.stop()


def _example(n: int):
    return read_catalog(example_catalog_path()).select(slice(0, n))


def _space(cat):
    space = default_space()
    space.bands = list(cat.bands)
    return space


def test_cosmos_galaxies_through_the_gateway_equal_the_in_process_fit(cosmos_dir, platform, nats_server):
    cat = read_catalog(cosmos_dir / "cosmos_specz_compilation_for_cigale_2.50_z_3.00.txt", on_unknown="skip")
    cat = cat.select(slice(0, 20))
    space = _space(cat)
    c = client(platform)
    sub = run_catalog(c, catalog_requests(cat, space.bands, pb.Budget(**BUDGET)), progress=False, timeout=600)
    assert not sub.failed and len(sub.results) == 20
    local = agent_fit_catalog(cat, _space(cat), budget=Budget(**BUDGET), progress=False)
    for r, row in zip(sub.results, local.table):
        remote = json.loads(r.row_json)
        expected = {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(local.table.colnames, row)}
        assert remote["id"] == expected["id"]
        assert not row_differences(remote, expected), row_differences(remote, expected)[:5]
    # both executors took work, every job has one done event
    assert all(n > 0 for n in handled_counts(platform, "executor")), handled_counts(platform, "executor")
    events = events_by_job(nats_server.url)
    assert all(sum(e.kind == "done" for e in events[j]) == 1 for j in sub.job_ids)
    assert serving(platform.gateway)


def test_with_knowledge_the_platforms_distillers_give_the_in_process_results(cosmos_dir, nats_server, tmp_path):
    """Knowledge on: galaxies submitted one after another, each distilled before the next, come back
    as the in-process run that learns from each search in turn (rules rank the steps from the second
    galaxy on, learned first looks from the sixth: MIN_OUTCOMES alike galaxies)."""
    from mephisto_sed.agents.knowledge import KnowledgeBase
    from mephisto_sed.agents.policy import MIN_OUTCOMES

    n = MIN_OUTCOMES + 2
    cat = read_catalog(cosmos_dir / "cosmos_specz_compilation_for_cigale_2.50_z_3.00.txt", on_unknown="skip")
    cat = cat.select(slice(0, n))
    plat = start_platform(nats_server.url, tmp_path / "run", MEPHISTO_USE_KNOWLEDGE="1")
    try:
        c = client(plat)
        remote = []
        for i in range(n):
            reqs = catalog_requests(cat.select(slice(i, i + 1)), _space(cat).bands, pb.Budget(**BUDGET))
            sub = run_catalog(c, reqs, progress=False, timeout=600)
            assert not sub.failed and len(sub.results) == 1
            wait_distilled(nats_server.url, sub.job_ids)  # the next galaxy asks knowledge that holds this one
            remote.append(json.loads(sub.results[0].row_json))
    finally:
        plat.stop()
    kb = KnowledgeBase(path=":memory:")
    local = agent_fit_catalog(cat, _space(cat), budget=Budget(**BUDGET), knowledge=kb, learn=True, progress=False)
    for got, row in zip(remote, local.table):
        expected = {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(local.table.colnames, row)}
        assert got["id"] == expected["id"]
        assert not row_differences(got, expected), (got["id"], row_differences(got, expected)[:5])
    # the knowledge mattered: the last galaxies started from a first look placed by it
    assert all("similar galaxies ended" in s.trace[0]["rationale"] for s in local.searches[MIN_OUTCOMES:])


def test_kill_9_an_executor_mid_job_loses_and_duplicates_nothing(platform, nats_server):
    cat = _example(8)
    space = _space(cat)
    c = client(platform)
    reqs = catalog_requests(cat, space.bands, pb.Budget(max_models=60_000, max_steps=14))
    job_ids = list(c.submit(reqs[0]).job_ids)
    victim = next(p for p in platform.processes if p.role == "executor")
    deadline = time.monotonic() + 60
    while handled_counts(platform, "executor")[0] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(victim.proc.pid, signal.SIGKILL)
    reply = wait_jobs(c, job_ids, timeout=300)
    assert len(reply.results) == len(job_ids) and not reply.pending
    assert sorted(r.job_id for r in reply.results) == sorted(job_ids)
    events = events_by_job(nats_server.url)
    for j in job_ids:
        steps = [e.step for e in events[j] if e.kind == "step"]
        assert sum(e.kind == "done" for e in events[j]) == 1
        assert len(steps) == len(set(steps)), "a step was recorded twice"
    survivors = [p for p in platform.processes if p is not victim]
    assert all(p.proc.poll() is None for p in survivors)


def test_restarting_nats_server_mid_run_loses_nothing(platform, nats_server):
    cat = _example(6)
    space = _space(cat)
    c = client(platform)
    reqs = catalog_requests(cat, space.bands, pb.Budget(max_models=40_000, max_steps=12))
    job_ids = list(c.submit(reqs[0]).job_ids)
    deadline = time.monotonic() + 120
    while not any(e.kind == "step" for evs in events_by_job(nats_server.url).values() for e in evs):
        assert time.monotonic() < deadline, "no step was ever done"
        time.sleep(0.2)
    nats_server.restart()  # mid-run (a step is done, more are queued); same port, same file store
    reply = wait_jobs(client(platform), job_ids, timeout=300)
    assert sorted(r.job_id for r in reply.results) == sorted(job_ids), [j.error for j in reply.pending]
    assert platform.alive()


def _obs(**kw) -> pb.Observation:
    bands = kw.pop(
        "bands",
        [
            pb.BandFlux(filter="subaru.suprime.r", flux_mjy=0.01, error_mjy=0.001),
            pb.BandFlux(filter="paranal.vircam.J", flux_mjy=0.02, error_mjy=0.002),
            pb.BandFlux(filter="spitzer.irac.I1", flux_mjy=0.03, error_mjy=0.003),
        ],
    )
    o = pb.Observation(source_id=kw.pop("source_id", "s1"), bands=bands, **kw)
    if "redshift" not in kw:
        o.redshift = 1.0
    return o


INTERPOLATION_BOMB = (
    "a0 = xxxxxxxxxx\n"
    + "".join(f"a{i} = " + ",".join([f"%(a{i - 1})s"] * 100) + "\n" for i in (1, 2, 3))
    + "sed_modules = sfhdelayed, bc03, %(a3)s, redshifting\n"
)
LONG_LADDER = (
    "sed_modules = sfhdelayed, bc03, redshifting\n[sed_modules_params]\n[[sfhdelayed]]\n"
    f"tau_main = {', '.join(str(100 + i) for i in range(120))}\n"
)

BAD_SUBMISSIONS = [
    (pb.SubmitBatchRequest(), "sources: empty"),
    (
        pb.SubmitBatchRequest(
            sources=[_obs(bands=[pb.BandFlux(filter="subaru.suprime.r", flux_mjy=float("nan"), error_mjy=0.1)] * 1)]
        ),
        "sources[0].bands[0].flux_mjy",
    ),
    (
        pb.SubmitBatchRequest(
            sources=[_obs(), _obs(bands=[pb.BandFlux(filter="subaru.suprime.r", flux_mjy=1, error_mjy=-1)])]
        ),
        "sources[1].bands[0].error_mjy",
    ),
    (
        pb.SubmitBatchRequest(sources=[_obs(bands=[pb.BandFlux(filter="hubble.wfc9.F999W", flux_mjy=1, error_mjy=1)])]),
        "sources[0].bands[0].filter",
    ),
    (pb.SubmitBatchRequest(sources=[_obs(redshift=-1.0)]), "sources[0].redshift: -1.0 is not in [0, 10]"),
    (pb.SubmitBatchRequest(sources=[_obs(redshift=float("nan"))]), "sources[0].redshift: missing"),
    (pb.SubmitBatchRequest(sources=[_obs(source_id="")]), "sources[0].source_id"),
    (pb.SubmitBatchRequest(sources=[_obs(source_id="é" * 101)]), "sources[0].source_id: longer than 200 bytes"),
    (pb.SubmitBatchRequest(sources=[_obs(source_id="a\x00b")]), "sources[0].source_id: holds control"),
    (pb.SubmitBatchRequest(sources=[_obs(), _obs()]), "sources[1].source_id: 's1' repeats sources[0]"),
    (
        pb.SubmitBatchRequest(
            sources=[_obs(bands=[pb.BandFlux(filter="subaru.suprime.r", flux_mjy=1e300, error_mjy=0.1)])]
        ),
        "sources[0].bands[0].flux_mjy: 1e+300 mJy is beyond",
    ),
    (
        pb.SubmitBatchRequest(
            sources=[_obs(bands=[pb.BandFlux(filter=b.filter, flux_mjy=-1, error_mjy=0.1) for b in _obs().bands])]
        ),
        "sources[0].bands: no detection has a positive flux",
    ),
    (pb.SubmitBatchRequest(sources=[_obs()] * 1001), "sources: 1001 sources exceed"),
    (pb.SubmitBatchRequest(sources=[_obs()], budget=pb.Budget(max_models=10**12)), "budget.max_models"),
    (
        pb.SubmitBatchRequest(sources=[_obs()], budget=pb.Budget(max_models=100)),
        "budget.max_models: 100 is below the first look of sources[0] (216 models)",
    ),
    (pb.SubmitBatchRequest(sources=[_obs()], pcigale_ini="sed_modules = os.system\n"), "pcigale_ini"),
    # ConfigObj interpolation is off: a 3-level 100-way %(name)s fan-out stays text (it held 3 GB)
    (pb.SubmitBatchRequest(sources=[_obs()], pcigale_ini=INTERPOLATION_BOMB), "pcigale_ini line 5: unsupported"),
    (pb.SubmitBatchRequest(sources=[_obs()], pcigale_ini="x = %(missing)s\n[a\n"), "pcigale_ini: cannot parse"),
    (pb.SubmitBatchRequest(sources=[_obs()], pcigale_ini=LONG_LADDER), "sfhdelayed.tau_main: 120 values"),
]


def test_bad_input_gets_a_precise_error_and_the_platform_stays_up(platform, nats_server):
    import grpc as _grpc

    ch = _grpc.insecure_channel(platform.gateway)
    stub = pb_grpc.GatewayStub(ch)
    md = [("authorization", f"Bearer {TOKEN}")]
    with pytest.raises(_grpc.RpcError) as e:
        stub.SubmitBatch(pb.SubmitBatchRequest(sources=[_obs()]), timeout=10)
    assert e.value.code() == _grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(_grpc.RpcError) as e:
        stub.GetJob(pb.GetJobRequest(job_id="x"), metadata=[("authorization", "Bearer wrong")], timeout=10)
    assert e.value.code() == _grpc.StatusCode.UNAUTHENTICATED
    for req, field in BAD_SUBMISSIONS:
        with pytest.raises(_grpc.RpcError) as e:
            stub.SubmitBatch(req, metadata=md, timeout=30)
        assert e.value.code() == _grpc.StatusCode.INVALID_ARGUMENT, (field, e.value.details())
        assert field in e.value.details(), (field, e.value.details())
        assert "<class" not in e.value.details() and "/tmp" not in e.value.details()
    with pytest.raises(_grpc.RpcError) as e:  # over the message size limit
        stub.SubmitBatch(pb.SubmitBatchRequest(pcigale_ini="x" * (17 * 2**20)), metadata=md, timeout=30)
    assert e.value.code() == _grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(_grpc.RpcError) as e:
        stub.GetJob(pb.GetJobRequest(job_id="nope"), metadata=md, timeout=10)
    assert e.value.code() == _grpc.StatusCode.NOT_FOUND
    # garbage on every work subject and malformed alerts: dead-lettered with a reason
    for subject in ("execute", "evaluate", "advance", "distill"):
        publish_raw(nats_server.url, f"mephisto.work.{subject}", b"\xff\x00garbage\x13")
    publish_raw(nats_server.url, "mephisto.work.advance", pb.AdvanceRequest(job_id="ghost", step=3).SerializeToString())
    alerts = [b"{not json", b"[1,2]", json.dumps({"alertId": 7}).encode()]
    alerts.append(json.dumps({"alertId": 8, "diaObject": {"diaObjectId": 5}, "fluxes": [{"band": "r"}]}).encode())
    no_z = {
        "alertId": 9,
        "diaObject": {"diaObjectId": 6},
        "fluxes": [{"band": b, "psfFlux": 1e4, "psfFluxErr": 1e2} for b in "gri"],
    }
    for a in alerts:
        publish_raw(nats_server.url, "mephisto.alerts.rubin", a)
    good = {**no_z, "alertId": 10, "diaObject": {"diaObjectId": 11, "redshift": 0.5}}
    publish_raw(nats_server.url, "mephisto.alerts.rubin", json.dumps(good).encode())
    # without a redshift: a photometric one (the proposer's first look over every redshift)
    publish_raw(nats_server.url, "mephisto.alerts.rubin", json.dumps(no_z).encode())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dl = dead_letters(nats_server.url)
        if len(dl) >= 5 + len(alerts):
            break
        time.sleep(0.3)
    by_subject: dict[str, list[str]] = {}
    for subject, headers, _ in dl:
        by_subject.setdefault(subject, []).append(headers.get("Mephisto-Reason", ""))
    for role in ("executor", "evaluator", "proposer", "distiller"):
        assert any("invalid message" in r for r in by_subject.get(f"mephisto.dlq.{role}", [])), (role, by_subject)
    assert any("no such job" in r for r in by_subject["mephisto.dlq.proposer"])
    reasons = by_subject["mephisto.dlq.alerts"]
    assert len(reasons) == len(alerts), reasons
    assert any("not JSON" in r for r in reasons) and any("diaObject.diaObjectId" in r for r in reasons)
    assert any("psfFlux" in r for r in reasons)
    # the good alerts became jobs and finished; every process is still up and serving
    c = client(platform)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        done = [e for evs in events_by_job(nats_server.url).values() for e in evs if e.kind == "done"]
        if len(done) >= 2:
            break
        time.sleep(0.5)
    assert sorted(e.source_id for e in done) == ["11", "6"]
    assert platform.alive()
    for p in platform.processes:
        assert serving(f"127.0.0.1:{p.port}"), p.role
    ch.close()
    results = {r.source_id: json.loads(r.row_json) for r in c.results([e.job_id for e in done]).results}
    assert results["11"]["redshift"] == 0.5 and "photoz.z_peak" not in results["11"]
    photo = results["6"]
    assert photo["photoz.first_look_models"] > 0 and photo["best.universe.redshift"] == photo["photoz.z_peak"]
    assert photo["models_evaluated"] > photo["photoz.first_look_models"]


def test_idempotency_key_makes_a_retry_return_the_same_jobs(platform):
    c = client(platform)
    cat = _example(2)
    req = catalog_requests(cat, list(cat.bands), pb.Budget(**BUDGET), idempotency_key="batch-42")[0]
    first = c.submit(req)
    again = c.submit(req)
    assert list(first.job_ids) == list(again.job_ids) and again.duplicate and not first.duplicate
    reply = wait_jobs(c, list(first.job_ids))
    assert len(reply.results) == 2
    events = list(c.watch(first.job_ids[0]))  # replays the job's history, ends at done
    assert events[0].kind == "queued" and events[-1].kind == "done"
    assert [e.step for e in events if e.kind == "step"] == list(range(events[-1].step))


def test_role_services_answer_grpc_with_health_reflection_and_field_errors(platform):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    ex = next(p for p in platform.processes if p.role == "executor")
    addr = f"127.0.0.1:{ex.port}"
    assert serving(addr, "mephisto.v1.Executor")
    with grpc.insecure_channel(addr) as ch:
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        reply = next(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = [s.name for s in reply.list_services_response.service]
        assert "mephisto.v1.Executor" in names and "grpc.health.v1.Health" in names
        stub = pb_grpc.ExecutorStub(ch)
        cfg = pb.Configuration(space=pb.SearchSpaceRef(space_id="nope"))
        with pytest.raises(grpc.RpcError) as e:  # a role's API takes only the platform's role token
            stub.Execute(pb.ExecuteRequest(observation=_obs(), configuration=cfg), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        md = [("authorization", f"Bearer {platform.role_token}")]
        with pytest.raises(grpc.RpcError) as e:
            stub.Execute(pb.ExecuteRequest(observation=_obs(), configuration=cfg), metadata=md, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "space_id" in e.value.details()
        from services.common import codec

        space = default_space()
        space.bands = [b.filter for b in _obs().bands]
        ref = pb.SearchSpaceRef(space_json=codec.space_to_json(space))
        whole = codec.configuration(ref, space, space.state(space.base))  # the 48M-model universe at once
        with pytest.raises(grpc.RpcError) as e:
            stub.Execute(pb.ExecuteRequest(observation=_obs(), configuration=whole), metadata=md, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "exceed the cap of 1,000,000" in e.value.details()
        huge = pb.Configuration(space=pb.SearchSpaceRef(space_json=" " * 300_000 + "{}"))
        with pytest.raises(grpc.RpcError) as e:
            stub.Execute(pb.ExecuteRequest(observation=_obs(), configuration=huge), metadata=md, timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "over 256 KiB" in e.value.details()


def test_graceful_shutdown_exits_cleanly(nats_server, tmp_path):
    plat = start_platform(nats_server.url, tmp_path / "run")
    c = client(plat)
    cat = _example(1)
    job = c.submit(catalog_requests(cat, list(cat.bands), pb.Budget(**BUDGET))[0]).job_ids[0]
    wait_jobs(c, [job])
    c.close()
    plat.stop()
    assert [p.proc.returncode for p in plat.processes] == [0] * len(plat.processes)


def test_sigterm_while_nats_is_unreachable_exits_at_once(tmp_path):
    """A role still waiting for NATS (never up, or a wrong address) stops on SIGTERM, exit 0."""
    import subprocess
    import sys

    from services.platform import free_port

    proc = subprocess.Popen(
        [sys.executable, "-m", "services.executor", "--nats", f"nats://127.0.0.1:{free_port()}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:  # the signal handler is in place once it says it is connecting
        if "connecting to NATS" in line:
            break
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert "stopped before NATS was reached" in proc.stderr.read()


def test_a_message_no_worker_ever_acks_is_dead_lettered_not_lost(platform, nats_server):
    """A worker that dies on the last delivery leaves JetStream nothing to redeliver; the gateway
    turns JetStream's max-deliveries advisory into a dead letter with the reason."""
    import asyncio

    import nats
    from nats.js.api import ConsumerConfig

    async def go() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        psub = await js.pull_subscribe(
            "mephisto.work.selftest",
            durable="mephisto-selftest",
            stream="MEPHISTO_WORK",
            config=ConsumerConfig(ack_wait=1.0, max_deliver=1),
        )
        await js.publish("mephisto.work.selftest", b"payload", headers={"Mephisto-Job-Id": "nojob"})
        msgs = await psub.fetch(1, timeout=5)
        assert msgs  # taken, never acked: the "worker" crashed (the durable consumer stays on the server)
        await nc.close()

    asyncio.run(go())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [h for s, h, d in dead_letters(nats_server.url) if s == "mephisto.dlq.selftest" and d == b"payload"]
        if found:
            break
        time.sleep(0.3)
    assert found and "without an ack" in found[0]["Mephisto-Reason"]
    assert found[0]["Mephisto-Original-Subject"] == "mephisto.work.selftest"


def test_submit_command_writes_what_fit_writes_and_knowledge_is_searchable(nats_server, tmp_path):
    """`mephisto-sed submit` end to end, with the distillers learning and answering knowledge queries."""
    plat = start_platform(nats_server.url, tmp_path / "run", MEPHISTO_USE_KNOWLEDGE="1")
    try:
        out = tmp_path / "out"
        submit_example(plat, out)
        from astropy.table import Table

        t = Table.read(out / "results.csv")
        assert list(t["id"]) == ["mock000", "mock001"] and all(t["steps"] > 0)
        for name in ("traces/mock000.json", "traces/mock000.md", "mock000.png", "mock000_best_model.fits"):
            assert (out / name).is_file(), name
        stub = pb_grpc.GatewayStub(grpc.insecure_channel(plat.gateway))
        md = [("authorization", f"Bearer {TOKEN}")]
        entries = learned(plat, {"mock000", "mock001"})  # the distiller learns after each result is out
        assert {s for e in entries for s in e.sources} >= {"mock000", "mock001"}
        assert all(json.loads(e.action_json)["type"] for e in entries)
        similar = stub.SearchKnowledge(
            pb.SearchKnowledgeRequest(signature=list(entries[0].signature), limit=3), metadata=md, timeout=10
        ).entries
        assert similar and similar[0].similarity == pytest.approx(1.0, abs=1e-3)
        assert all(e.mean_models >= 1 for e in entries)  # each rule's cost, for the ranking by gain per model
        # each rule says what it was learned on; asked with an unlike galaxy's domain, nothing comes back
        learned_on = entries[0].domains[0]
        assert learned_on.rest_min_um < learned_on.rest_max_um
        alike = stub.SearchKnowledge(
            pb.SearchKnowledgeRequest(signature=list(entries[0].signature), limit=3, domain=learned_on),
            metadata=md,
            timeout=10,
        ).entries
        assert alike and alike[0].id == similar[0].id
        elsewhere = pb.Domain(redshift=learned_on.redshift + 3, rest_min_um=0.1, rest_max_um=1.0)
        unlike = pb.SearchKnowledgeRequest(signature=list(entries[0].signature), limit=3, domain=elsewhere)
        assert not stub.SearchKnowledge(unlike, metadata=md, timeout=10).entries
        with pytest.raises(grpc.RpcError) as e:
            bad = pb.Domain(redshift=1.0, rest_min_um=2.0, rest_max_um=1.0)
            stub.SearchKnowledge(pb.SearchKnowledgeRequest(domain=bad), metadata=md, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "domain" in e.value.details()
        for levels, field in (({"UV": 1.0}, "levels: unknown regime 'UV'"), ({"NIR": float("nan")}, "levels[NIR]")):
            with pytest.raises(grpc.RpcError) as e:
                stub.SearchKnowledge(
                    pb.SearchKnowledgeRequest(outcomes_at_redshift=1.0, levels=levels), metadata=md, timeout=10
                )
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in e.value.details()
        # where the two searches ended: the prior the proposer asks for before a new galaxy's first look
        assert str(t["anomaly"][0]) == "False"
        z = float(t["redshift"][0])
        reply = stub.SearchKnowledge(pb.SearchKnowledgeRequest(outcomes_at_redshift=z), metadata=md, timeout=10)
        ended = json.loads(reply.outcomes_json)
        assert not reply.entries  # the prior alone: the rules are not listed with it
        best = json.loads((out / "traces" / "mock000.json").read_text())["best"]["model"]
        assert best["sfhdelayed"]["tau_main"] in ended["sfhdelayed"]["tau_main"]
        assert (
            json.loads(stub.SearchKnowledge(pb.SearchKnowledgeRequest(), metadata=md, timeout=10).outcomes_json or "{}")
            == {}
        )
        with pytest.raises(grpc.RpcError) as e:
            stub.SearchKnowledge(pb.SearchKnowledgeRequest(outcomes_at_redshift=float("nan")), metadata=md, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "outcomes_at_redshift" in e.value.details()
    finally:
        plat.stop()


def test_gateway_serves_tls_when_configured(nats_server, tmp_path):
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    plat = start_platform(nats_server.url, tmp_path / "run", MEPHISTO_TLS_CERT=str(cert), MEPHISTO_TLS_KEY=str(key))
    try:
        port = plat.gateway.split(":")[1]
        from gateway.client import GatewayClient

        c = GatewayClient(f"localhost:{port}", TOKEN, ca_file=str(cert))
        with pytest.raises(grpc.RpcError) as e:
            c.job("nope")
        assert e.value.code() == grpc.StatusCode.NOT_FOUND  # reached the gateway over TLS
        c.close()
        with grpc.insecure_channel(f"localhost:{port}") as ch:  # plaintext is refused
            with pytest.raises(grpc.RpcError) as e:
                pb_grpc.GatewayStub(ch).GetJob(pb.GetJobRequest(job_id="x"), timeout=5)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        plat.stop()


def test_hostile_gateway_calls_get_precise_answers_and_retries_re_emit_nothing(nats_server, tmp_path):
    """Authentication before parsing; garbage bytes and bad job ids are INVALID_ARGUMENT; an
    idempotency key reused with another payload is refused by name; a retry of a finished batch
    (after the streams' duplicate window) emits no second queued/done; results larger than one
    reply come over several (the reply limit here is 77 kB, a result ~24 kB)."""
    import asyncio

    import nats as nats_client

    plat = start_platform(nats_server.url, tmp_path / "run", MEPHISTO_MAX_MESSAGE_MB="0.1")
    try:
        ch = grpc.insecure_channel(plat.gateway)
        raw = ch.unary_unary("/mephisto.v1.Gateway/GetResults")  # bytes in, bytes out
        md = [("authorization", f"Bearer {TOKEN}")]
        with pytest.raises(grpc.RpcError) as e:
            raw(b"\xff\xff\xff\x0fgarbage", timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as e:
            raw(b"\xff\xff\xff\x0fgarbage", metadata=md, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details() == "request: not a valid mephisto.v1.GetResultsRequest"
        c = client(plat)
        for bad in ("", "../../etc", "a.b", "*", "é" * 3, "x" * 65):
            with pytest.raises(grpc.RpcError) as e:
                c.stub.GetResults(pb.GetResultsRequest(job_ids=["ok", bad]), metadata=md, timeout=10)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "job_ids[1]" in e.value.details()

        cat = _example(8)
        req = catalog_requests(cat, list(cat.bands), pb.Budget(max_models=2_000, max_steps=2), idempotency_key="K")[0]
        first = c.submit(req)
        other = pb.SubmitBatchRequest()
        other.CopyFrom(req)
        other.budget.max_steps = 3
        with pytest.raises(grpc.RpcError) as e:
            c.submit(other)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "idempotency_key 'K:0': already used for a different request" in e.value.details()
        reply = wait_jobs(c, list(first.job_ids))
        assert len(reply.results) == 8 and {r.source_id for r in reply.results} == set(cat.ids.astype(str))
        c.results_calls = 0
        assert [r.job_id for r in c.results(list(first.job_ids)).results] == list(first.job_ids)
        assert c.results_calls >= 3  # 8 results of ~24 kB: three or four replies

        async def shorten_duplicate_window() -> None:
            nc = await nats_client.connect(nats_server.url)
            js = nc.jetstream()
            for name in ("MEPHISTO_EVENTS", "MEPHISTO_WORK"):
                cfg = (await js.stream_info(name)).config
                cfg.duplicate_window = 0.5
                await js.update_stream(cfg)
            # wait until the server forgets a message id (observed, not slept on): past the window,
            # only the gateway's own check can stop a re-emit
            probe = {"Nats-Msg-Id": "window-probe"}
            await js.publish("mephisto.events.window-probe", b"", headers=probe)
            while (await js.publish("mephisto.events.window-probe", b"", headers=probe)).duplicate:
                await asyncio.sleep(0.05)
            await nc.close()

        asyncio.run(shorten_duplicate_window())
        again = c.submit(req)
        assert again.duplicate and list(again.job_ids) == list(first.job_ids)
        kinds = [e.kind for e in events_by_job(nats_server.url)[first.job_ids[0]]]
        assert kinds.count("queued") == 1 and kinds.count("done") == 1, kinds
    finally:
        plat.stop()


def test_during_a_nats_outage_the_gateway_answers_unavailable_and_submit_retries(platform, nats_server):
    """No UNKNOWN with a NATS exception class: UNAVAILABLE, and the client's submit retries with back-off
    under one idempotency key until NATS is back; the batch then runs once."""
    import threading

    cat = _example(2)
    req = catalog_requests(cat, list(cat.bands), pb.Budget(**BUDGET))[0]
    c = client(platform)
    nats_server.stop()
    with pytest.raises(grpc.RpcError) as e:
        c.stub.SubmitBatch(req, metadata=c.metadata, timeout=60)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value.details()
    assert "NATS" in e.value.details() and "<class" not in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        c.stub.GetJob(pb.GetJobRequest(job_id="abc"), metadata=c.metadata, timeout=60)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE

    restarted = threading.Event()

    def restart_after_a_retry() -> None:
        deadline = time.monotonic() + 120
        while c.retries == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        nats_server.start()
        restarted.set()

    threading.Thread(target=restart_after_a_retry, daemon=True).start()
    reply = c.submit(req, timeout=180)
    assert restarted.is_set() and c.retries >= 1 and len(reply.job_ids) == 2
    done = wait_jobs(c, list(reply.job_ids))
    assert sorted(r.job_id for r in done.results) == sorted(reply.job_ids)
    assert platform.alive()


def test_inline_spaces_are_cached_in_a_bounded_lru():
    """Inline space_json used to be cached forever (+1 GB RSS after 100 calls)."""
    import asyncio

    from services.common import codec
    from services.common.jobs import MAX_CACHED_SPACES, Spaces

    spaces = Spaces(None)
    space = default_space()

    async def ask(n: int) -> None:
        for i in range(n):
            space.bands = [f"band{i}"]  # another space each time
            await spaces.get(pb.SearchSpaceRef(space_json=codec.space_to_json(space)))

    asyncio.run(ask(MAX_CACHED_SPACES + 40))
    assert len(spaces.cache) == MAX_CACHED_SPACES
    assert next(reversed(spaces.cache.values())).bands == [f"band{MAX_CACHED_SPACES + 39}"]


def test_a_thousand_sources_come_back_whole(nats_server, tmp_path):
    """A catalogue of 1,000 sources through the gateway: every result comes back (GetResults pages
    by size: 1,000 finished results are several times the message limit)."""
    from astropy.table import vstack

    base = read_catalog(example_catalog_path()).to_table()
    parts = []
    for r in range(125):
        part = base.copy()
        part["id"] = [f"{sid}-{r}" for sid in base["id"]]
        parts.append(part)
    cat = read_catalog(vstack(parts))
    plat = start_platform(nats_server.url, tmp_path / "run", executors=2, MEPHISTO_MAX_MESSAGE_MB="2")
    try:
        c = client(plat)
        reqs = catalog_requests(cat, list(cat.bands), pb.Budget(max_models=1000, max_steps=1))
        sub = run_catalog(c, reqs, progress=False, poll=2.0, timeout=1500)
        assert not sub.failed and len(sub.results) == 1000
        assert sorted(r.source_id for r in sub.results) == sorted(cat.ids.astype(str))
        size = sum(r.ByteSize() for r in sub.results)
        assert size > 4 * 2 * 2**20  # the answer needed several replies
        c.results_calls = 0
        assert len(c.results(sub.job_ids).results) == 1000 and c.results_calls >= 5
    finally:
        plat.stop()


def test_job_records_are_written_with_a_revision_check(nats_server):
    """The gateway and the proposers both change job records: with plain puts one's change was
    lost when both wrote at once. Two writers, 40 increments each: all 80 survive."""
    import asyncio

    from services.common.bus import Bus
    from services.common.jobs import update_job

    async def go() -> int:
        a = await Bus.connect(nats_server.url, "writer-a")
        b = await Bus.connect(nats_server.url, "writer-b")

        def bump(job):
            job = job or pb.Job(job_id="j1", source_id="s")
            job.models_evaluated += 1
            return job

        async def writer(bus):
            for _ in range(40):
                await update_job(bus, "j1", bump)
                await asyncio.sleep(0)

        await asyncio.gather(writer(a), writer(b))
        job, _ = await update_job(a, "j1", lambda j: None)
        await a.close()
        await b.close()
        return job.models_evaluated

    assert asyncio.run(go()) == 80


def test_knowledge_is_fetched_before_each_step_and_its_absence_is_in_the_trace(nats_server, tmp_path):
    """With knowledge on and no distiller to answer, the proposer fetches it once per recorded node
    on its event loop (never from inside the search), the job still finishes, and every step
    chosen without it says so in the trace."""
    from services.platform import ROLES, Platform

    replicas = {r: 1 for r in ROLES}
    replicas["distiller"] = 0
    env = {"MEPHISTO_USE_KNOWLEDGE": "1", "MEPHISTO_ACK_WAIT": "10", "MEPHISTO_KNOWLEDGE": str(tmp_path / "kb")}
    plat = Platform(nats_server.url, [TOKEN], tmp_path / "run", replicas=replicas, env=env).start()
    try:
        c = client(plat)
        cat = _example(1)
        req = catalog_requests(cat, list(cat.bands), pb.Budget(max_models=20_000, max_steps=3))[0]
        reply = wait_jobs(c, list(c.submit(req).job_ids))
        trace = json.loads(reply.results[0].trace_json)["steps_detail"]
        chosen = [s for s in trace[1:] if s["rule"] != "estimate"]  # chosen from a node's proposals
        assert chosen and all(s.get("knowledge", "").startswith("unavailable: no distiller answered") for s in chosen)
    finally:
        plat.stop()
