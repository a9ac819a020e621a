"""One trace covers a whole job: gateway -> NATS -> proposer, executor, evaluator, distiller, with
job ids as attributes; the metrics the dashboards read are exported. All roles run in this
process here (so one in-memory exporter sees every span), against a real nats-server."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.client import GatewayClient, catalog_requests
from gateway.server import make_role as make_gateway
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.catalog import read_catalog
from mephisto_sed.cli import example_catalog_path
from services.common import telemetry
from services.common.runner import serve
from services.common.settings import Settings
from services.distiller.service import make_role as make_distiller
from services.evaluator.service import make_role as make_evaluator
from services.executor.service import make_role as make_executor
from services.platform import NatsServer
from services.proposer.service import make_role as make_proposer

from .platform_helpers import TOKEN, wait_jobs

ROLES = {
    "proposer": make_proposer,
    "executor": make_executor,
    "evaluator": make_evaluator,
    "distiller": make_distiller,
    "gateway": make_gateway,
}


@pytest.fixture
def in_process_platform(tmp_path):
    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry.install(tp, MeterProvider(metric_readers=[reader]))
    nats = NatsServer(tmp_path / "nats").start()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ports: dict[str, int] = {}

    async def main() -> None:
        tasks = []
        for role, make in ROLES.items():
            s = Settings(role, nats_url=nats.url, knowledge_path=str(tmp_path / "kb"), tokens=[TOKEN])
            s.port_file = str(tmp_path / f"{role}.port")
            tasks.append(asyncio.create_task(serve(s, make, stop)))
        await asyncio.gather(*tasks)

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while len(ports) < len(ROLES) and time.monotonic() < deadline:
        for role in ROLES:
            p = tmp_path / f"{role}.port"
            if p.exists() and p.read_text():
                ports[role] = int(p.read_text())
        time.sleep(0.1)
    assert len(ports) == len(ROLES), "roles did not start"
    yield ports, spans, reader
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    nats.cleanup()


def test_one_trace_covers_a_whole_job_across_every_service(in_process_platform):
    ports, spans, reader = in_process_platform
    cat = read_catalog(example_catalog_path()).select(slice(0, 1))
    c = GatewayClient(f"127.0.0.1:{ports['gateway']}", TOKEN)
    req = catalog_requests(cat, list(cat.bands), pb.Budget(max_models=20_000, max_steps=6))[0]
    job_id = c.submit(req).job_ids[0]
    assert wait_jobs(c, [job_id], timeout=120).results[0].source_id == str(cat.ids[0])
    deadline = time.monotonic() + 30  # the distiller runs after the result is out
    while time.monotonic() < deadline and not any(s.name.startswith("distiller") for s in spans.get_finished_spans()):
        time.sleep(0.2)
    job_spans = [s for s in spans.get_finished_spans() if s.attributes.get("mephisto.job.id") == job_id]
    names = {s.name for s in job_spans}
    for expected in (
        f"job {job_id}",
        "proposer mephisto.work.advance",
        "executor mephisto.work.execute",
        "evaluator mephisto.work.evaluate",
        "distiller mephisto.work.distill",
    ):
        assert expected in names, (expected, sorted(names))
    traces = {s.context.trace_id for s in job_spans}
    assert len(traces) == 1, "the job's spans are spread over several traces"
    root = [s for s in spans.get_finished_spans() if s.name == "Gateway/SubmitBatch"]
    assert root and root[0].context.trace_id in traces
    # metrics the dashboards and scalers query
    data = reader.get_metrics_data()
    seen = {
        m.name: sum(getattr(p, "value", getattr(p, "count", 0)) for p in m.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert seen.get("mephisto.models.evaluated", 0) > 1000
    assert seen.get("mephisto.jobs.submitted") == 1 and seen.get("mephisto.jobs.completed") == 1
    assert seen.get("mephisto.step.latency", 0) >= 6 * 3  # executor, evaluator and proposer steps
    assert "mephisto.queue.lag" in seen
    c.close()


def test_services_export_traces_and_metrics_to_a_real_collector(tmp_path):
    """rotel (an OpenTelemetry collector from PyPI) receives OTLP from the service processes."""
    rotel = pytest.importorskip("rotel", reason="rotel is in the dev extra")
    import subprocess
    from pathlib import Path

    from services.platform import free_port

    from .platform_helpers import client, start_platform

    port = free_port()
    log = tmp_path / "rotel.log"
    agent = Path(rotel.__file__).parent / "rotel-agent"
    with open(log, "wb") as out:
        collector = subprocess.Popen(
            [str(agent), "start", "--otlp-grpc-endpoint", f"127.0.0.1:{port}", "--exporter", "blackhole"]
            + ["--debug-log", "traces", "--debug-log", "metrics", "--debug-log-verbosity", "detailed"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    nats = NatsServer(tmp_path / "nats").start()
    try:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_BSP_SCHEDULE_DELAY": "200"}
        plat = start_platform(nats.url, tmp_path / "run", **env)
        c = client(plat)
        cat = read_catalog(example_catalog_path()).select(slice(0, 1))
        job_id = c.submit(catalog_requests(cat, list(cat.bands), pb.Budget(max_models=10_000, max_steps=4))[0]).job_ids[
            0
        ]
        wait_jobs(c, [job_id], timeout=120)
        c.close()
        plat.stop()  # shutdown flushes spans and metrics
        deadline = time.monotonic() + 20
        text = ""
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if "executor mephisto.work.execute" in text and "mephisto.models.evaluated" in text:
                break
            time.sleep(0.3)
        for name in ("Gateway/SubmitBatch", "proposer mephisto.work.advance", "executor mephisto.work.execute"):
            assert name in text, name
        assert f"Str({job_id})" in text
        for service in ("mephisto-gateway", "mephisto-executor", "mephisto-evaluator", "mephisto-proposer"):
            assert service in text, service
        assert "mephisto.models.evaluated" in text and "mephisto.step.latency" in text
    finally:
        collector.terminate()
        collector.wait(10)
        nats.cleanup()
