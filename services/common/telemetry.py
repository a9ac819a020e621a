"""OpenTelemetry for every process: traces and metrics, OTLP export switched on by deployment
(``OTEL_EXPORTER_OTLP_ENDPOINT``), W3C trace context carried in NATS headers and gRPC metadata.

The metric names below are the contract with dashboards and autoscalers (deploy/): change them
only together.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation

log = logging.getLogger(__name__)

TRACER_NAME = "mephisto"
# metric name -> (kind, unit, description)
METRICS: dict[str, tuple[str, str, str]] = {
    "mephisto.jobs.submitted": ("counter", "{job}", "sources accepted by the gateway"),
    "mephisto.jobs.completed": ("counter", "{job}", "jobs finished, by status (done, failed)"),
    "mephisto.jobs.in_flight": ("updown", "{job}", "jobs accepted and not finished"),
    "mephisto.anomalies": ("counter", "{job}", "sources flagged as anomalies"),
    "mephisto.step.latency": ("histogram", "ms", "handling time of one work message, by role"),
    "mephisto.models.evaluated": ("counter", "{model}", "SED models fitted by executors"),
    "mephisto.tokens": ("counter", "{token}", "LLM tokens spent by proposers"),
    "mephisto.llm.cost": ("counter", "USD", "LLM cost by the proposers' cost model"),
    "mephisto.redeliveries": ("counter", "{message}", "work messages delivered more than once, by role"),
    "mephisto.dead_letters": ("counter", "{message}", "messages sent to the dead-letter subject, by role"),
    "mephisto.queue.lag": ("gauge", "{message}", "messages waiting for a role's consumer (JetStream num_pending)"),
}

# the counters each role writes, set to zero when it starts: a dashboard or alert then reads 0
# (no tokens, no dead letters yet), not "no data", and rate()/increase() work from the first event
COUNTERS_AT_START: dict[str, list[tuple[str, dict[str, str]]]] = {
    "gateway": [
        ("mephisto.jobs.submitted", {}),
        ("mephisto.jobs.completed", {"status": "failed"}),
        ("mephisto.jobs.in_flight", {}),
    ],
    "proposer": [
        ("mephisto.jobs.completed", {"status": "done"}),
        ("mephisto.anomalies", {}),
        ("mephisto.tokens", {"role": "proposer"}),
        ("mephisto.llm.cost", {"role": "proposer"}),
    ],
    "executor": [("mephisto.models.evaluated", {})],
}
for _role in ("gateway", "proposer", "executor", "evaluator", "distiller"):
    COUNTERS_AT_START.setdefault(_role, []).extend(
        [("mephisto.redeliveries", {"role": _role}), ("mephisto.dead_letters", {"role": _role})]
    )

_configured = False
_instruments: dict[str, Any] = {}
_lag_sources: list[Callable[[], Iterable[tuple[str, int]]]] = []


# step latency in ms: a search step takes from milliseconds (evaluate) to minutes (a big grid)
LATENCY_BUCKETS_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000)


def setup(service_name: str, metrics_port: int = 0) -> None:
    """Install tracer and meter providers once per process; OTLP export when configured, and a
    Prometheus ``/metrics`` endpoint on ``metrics_port`` (0 = none)."""
    global _configured
    if _configured:
        return
    _configured = True
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": service_name})
    readers: list[Any] = []  # OTLP push and Prometheus pull readers
    tp = TracerProvider(resource=resource)
    env = os.environ.get
    if env("OTEL_EXPORTER_OTLP_ENDPOINT") or env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info(
            "OpenTelemetry: traces by OTLP to %s",
            env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env("OTEL_EXPORTER_OTLP_ENDPOINT"),
        )
    if env("OTEL_EXPORTER_OTLP_ENDPOINT") or env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        interval = float(env("OTEL_METRIC_EXPORT_INTERVAL", "10000"))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=interval))
    if metrics_port:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
        readers.append(PrometheusMetricReader())
        log.info("Prometheus metrics on :%d/metrics", metrics_port)
    trace.set_tracer_provider(tp)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


def install(tracer_provider: Any, meter_provider: Any) -> None:
    """Use the given providers (tests: in-memory exporter and reader)."""
    global _configured
    _configured = True
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)


def shutdown() -> None:
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        try:
            provider.shutdown()  # type: ignore[union-attr]  # the SDK providers flush pending spans, metrics
        except Exception:  # noqa: BLE001 - no SDK provider installed
            pass


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def instrument(name: str) -> Any:
    """The instrument named in METRICS (created on first use)."""
    if name not in _instruments:
        kind, unit, desc = METRICS[name]
        meter = metrics.get_meter(TRACER_NAME)
        if kind == "counter":
            _instruments[name] = meter.create_counter(name, unit=unit, description=desc)
        elif kind == "updown":
            _instruments[name] = meter.create_up_down_counter(name, unit=unit, description=desc)
        elif kind == "histogram":
            _instruments[name] = meter.create_histogram(
                name, unit=unit, description=desc, explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_MS
            )
        elif kind == "gauge":
            _instruments[name] = meter.create_observable_gauge(name, [_observe_lag], unit=unit, description=desc)
    return _instruments[name]


def add(name: str, value: float = 1, **attrs: Any) -> None:
    instrument(name).add(value, attributes=attrs)


def start_counters(role: str) -> None:
    """Every counter ``role`` writes, at zero (``COUNTERS_AT_START``)."""
    for name, attrs in COUNTERS_AT_START.get(role, []):
        add(name, 0, **attrs)


def record(name: str, value: float, **attrs: Any) -> None:
    instrument(name).record(value, attributes=attrs)


def register_lag(source: Callable[[], Iterable[tuple[str, int]]]) -> None:
    """``source`` yields (role, messages pending) from the last consumer info it read."""
    _lag_sources.append(source)
    instrument("mephisto.queue.lag")


def _observe_lag(options: CallbackOptions) -> Iterable[Observation]:
    for source in _lag_sources:
        for role, pending in source():
            yield Observation(pending, {"role": role})


# -- context propagation ------------------------------------------------------------------------
def inject(carrier: dict[str, str] | None = None) -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``, ``tracestate``)."""
    carrier = {} if carrier is None else carrier
    propagate.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, str] | None) -> Context:
    return propagate.extract(dict(carrier or {}))
