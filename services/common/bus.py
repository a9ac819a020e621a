"""NATS JetStream topology and the worker loop every role runs.

Work subjects go to one work-queue stream; each role has one durable pull consumer that all of
its replicas share (so two replicas split the work). Messages are acked explicitly after the
handler's results are published; a long handler keeps its message with ``in_progress``; a failure
is retried with a back-off up to ``max_deliver`` times, then the message goes to
``mephisto.dlq.<role>`` with the reason in its headers. A malformed message is dead-lettered at
once. Handlers are idempotent: results are published with a ``Nats-Msg-Id`` (JetStream drops
duplicates) and job state is written with revision checks.

Chosen over FastStream (docs/adr/0002-platform.md): the retry, dead-letter and revision logic
is the substance here and reads plainly on nats-py; tests use a real nats-server either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry import trace

from . import telemetry

log = logging.getLogger(__name__)

STREAM_WORK = "MEPHISTO_WORK"
STREAM_EVENTS = "MEPHISTO_EVENTS"
STREAM_DLQ = "MEPHISTO_DLQ"
STREAM_ALERTS = "MEPHISTO_ALERTS"

WORK = "mephisto.work"
SUBJECT = {
    "execute": f"{WORK}.execute",
    "evaluate": f"{WORK}.evaluate",
    "advance": f"{WORK}.advance",  # the proposer continues a job's tree search
    "distill": f"{WORK}.distill",
}
ROLE_OF = {"executor": "execute", "evaluator": "evaluate", "proposer": "advance", "distiller": "distill"}
EVENTS = "mephisto.events"  # mephisto.events.<job_id>
DLQ = "mephisto.dlq"  # mephisto.dlq.<role>
ALERTS = "mephisto.alerts"  # mephisto.alerts.<anything>
RPC_KNOWLEDGE = "mephisto.rpc.knowledge"  # core request/reply, answered by distillers

KV_SPECS = "mephisto_specs"  # job id -> JobSpec
KV_JOBS = "mephisto_jobs"  # job id -> Job (status, result)
KV_SEARCH = "mephisto_search"  # job id -> the search tree's header (zlib JSON), revision-checked
KV_NODES = "mephisto_nodes"  # "<job id>.<node>" -> one immutable node record (zlib JSON)
KV_SPACES = "mephisto_spaces"  # space id -> search space JSON
KV_IDEMPOTENCY = "mephisto_idempotency"  # hashed idempotency key -> SubmitBatchReply
KV_DISTILLED = "mephisto_distilled"  # job id -> marker: knowledge already taken from this job
BUCKETS = (KV_SPECS, KV_JOBS, KV_SEARCH, KV_NODES, KV_SPACES, KV_IDEMPOTENCY, KV_DISTILLED)
BUCKET_TTL = {KV_SEARCH: 14 * 86400.0, KV_NODES: 14 * 86400.0, KV_IDEMPOTENCY: 14 * 86400.0}  # seconds

H_JOB = "Mephisto-Job-Id"
H_REASON = "Mephisto-Reason"
H_SUBJECT = "Mephisto-Original-Subject"
H_DELIVERIES = "Mephisto-Deliveries"


class TopologyMissing(RuntimeError):
    """The streams or buckets a role needs do not exist and it may not create them."""


class PermanentError(ValueError):
    """A message that no retry can fix (malformed, invalid): dead-lettered at once."""


class Bus:
    """A connection to NATS with JetStream, its key-value buckets and publish helpers."""

    def __init__(self, nc: NATS, js: JetStreamContext, kv: dict[str, Any]):
        self.nc, self.js, self.kv = nc, js, kv

    @classmethod
    async def connect(
        cls,
        url: str,
        name: str,
        setup: bool = True,
        buckets: tuple[str, ...] = BUCKETS,
        user: str = "",
        password: str = "",
        inbox_prefix: str = "_INBOX",
        replicas: int = 1,
    ) -> Bus:
        """Connect, create the topology when ``setup`` (else it must exist: ``python -m services.setup``)
        and bind ``buckets``. ``user``/``password`` and a per-role ``inbox_prefix`` go with the
        role's NATS permissions (services/common/access.py)."""
        creds = {"user": user, "password": password} if user else {}
        nc = await nats.connect(
            servers(url),
            name=name,
            max_reconnect_attempts=-1,  # survive a restart of nats-server
            reconnect_time_wait=0.5,
            connect_timeout=5,
            error_cb=_log_error,
            disconnected_cb=_log_disconnect,
            inbox_prefix=inbox_prefix,
            **creds,
        )
        js = nc.jetstream(timeout=10)
        if setup:
            await ensure_topology(js, replicas)
        try:
            kv = {b: await js.key_value(b) for b in buckets}
        except Exception as exc:
            await nc.close()
            raise TopologyMissing(
                f"{name}: cannot bind the key-value buckets {', '.join(buckets)} ({exc}); "
                "create the topology first: python -m services.setup"
            ) from exc
        return cls(nc, js, kv)

    async def publish(self, subject: str, payload: bytes, msg_id: str | None = None, job_id: str = "") -> None:
        headers = telemetry.inject()
        if msg_id:
            headers["Nats-Msg-Id"] = msg_id
        if job_id:
            headers[H_JOB] = job_id
        await self.js.publish(subject, payload, headers=headers)

    async def dead_letter(
        self, role: str, subject: str, data: bytes, headers: dict[str, str] | None, deliveries: Any, reason: str
    ) -> None:
        """Publish a message's payload and headers to ``mephisto.dlq.<role>`` with the reason."""
        headers = dict(headers or {})
        headers.pop("Nats-Msg-Id", None)  # not a duplicate of anything
        headers.update({H_REASON: reason[:2000], H_SUBJECT: subject, H_DELIVERIES: str(deliveries)})
        await self.js.publish(f"{DLQ}.{role}", data or b"", headers=headers)
        telemetry.add("mephisto.dead_letters", role=role)
        log.warning("dead letter from %s (%s): %s", role, headers.get(H_JOB, "no job id"), reason)

    async def close(self) -> None:
        # the workers have finished and acked what they held; a drain would wait out the pull
        # subscriptions' 30 s drain timeout for nothing, so flush what was published and close
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=5)
        with contextlib.suppress(Exception):
            await self.nc.close()


def servers(url: str) -> list[str]:
    """The NATS servers of ``url``: one, or several comma-separated (the nodes of a cluster, as
    NATS_URL names them for the Go client and the nats CLI); the client tries each in turn."""
    return [u.strip() for u in url.split(",") if u.strip()]


async def ensure_topology(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the streams and buckets when missing (idempotent; file storage survives restarts).
    ``replicas``: copies of each on a clustered JetStream (3 on Kubernetes)."""

    def stream(name: str, subject: str, work_queue: bool = False, max_age: float | None = None) -> StreamConfig:
        return StreamConfig(
            name=name,
            subjects=[f"{subject}.>"],
            storage=StorageType.FILE,
            num_replicas=replicas,
            retention=RetentionPolicy.WORK_QUEUE if work_queue else None,
            duplicate_window=300.0 if work_queue else 0,
            max_age=max_age,
        )

    streams = [
        stream(STREAM_WORK, WORK, work_queue=True),
        stream(STREAM_EVENTS, EVENTS, max_age=7 * 86400.0),
        stream(STREAM_DLQ, DLQ, max_age=30 * 86400.0),
        stream(STREAM_ALERTS, ALERTS, work_queue=True),
    ]
    for cfg in streams:
        try:
            await js.stream_info(cfg.name or "")
        except NotFoundError:
            with contextlib.suppress(Exception):  # a replica created it meanwhile
                await js.add_stream(cfg)
    for bucket in BUCKETS:
        try:
            await js.key_value(bucket)
        except Exception:  # noqa: BLE001 - not found, or not allowed: try to create it
            with contextlib.suppress(Exception):
                await js.create_key_value(
                    KeyValueConfig(
                        bucket=bucket,
                        history=1,
                        storage=StorageType.FILE,
                        ttl=BUCKET_TTL.get(bucket),
                        replicas=replicas,
                    )
                )


Handler = Callable[[Msg], Awaitable[None]]


class Worker:
    """Runs ``handler`` on every message of ``subject`` for one role (a shared durable consumer)."""

    def __init__(self, bus: Bus, role: str, subject: str, handler: Handler, ack_wait: float, max_deliver: int):
        self.bus, self.role, self.subject, self.handler = bus, role, subject, handler
        self.ack_wait, self.max_deliver = ack_wait, max_deliver
        self.durable = f"mephisto-{role}"
        self.busy = 0
        self.pending = 0  # num_pending at the last consumer info (queue lag)
        self.handled = 0

    async def run(self, stop: asyncio.Event, concurrency: int = 1) -> None:
        psub = None
        while psub is None and not stop.is_set():
            try:
                psub = await self.bus.js.pull_subscribe(
                    self.subject,
                    durable=self.durable,
                    stream=_stream_of(self.subject),
                    config=ConsumerConfig(
                        ack_wait=self.ack_wait, max_deliver=self.max_deliver + 1, max_ack_pending=1000
                    ),
                )
            except Exception as exc:  # noqa: BLE001 - NATS down at start-up: keep trying
                log.warning("%s: cannot subscribe yet (%s)", self.role, exc)
                await asyncio.sleep(1.0)
        if psub is None:
            return
        telemetry.register_lag(lambda: [(self.role, self.pending)])
        await asyncio.gather(*(self._loop(psub, stop) for _ in range(concurrency)))

    async def _loop(self, psub: Any, stop: asyncio.Event) -> None:
        last_info = 0.0
        while not stop.is_set():
            try:
                msgs = await psub.fetch(1, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                msgs = []
            except Exception as exc:  # noqa: BLE001 - disconnected, server restarting
                log.debug("%s: fetch failed (%s)", self.role, exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self.handle(msg)
            if time.monotonic() - last_info > 5.0:
                last_info = time.monotonic()
                with contextlib.suppress(Exception):
                    self.pending = (await psub.consumer_info()).num_pending

    async def handle(self, msg: Msg) -> None:
        n = _deliveries(msg)
        if n > 1:
            telemetry.add("mephisto.redeliveries", role=self.role)
        ctx = telemetry.extract(msg.headers)
        job = (msg.headers or {}).get(H_JOB, "")
        self.busy += 1
        t0 = time.perf_counter()
        beat = asyncio.create_task(self._heartbeat(msg))
        with telemetry.tracer().start_as_current_span(
            f"{self.role} {msg.subject}", context=ctx, kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("mephisto.job.id", job)
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", msg.subject)
            span.set_attribute("mephisto.deliveries", n)
            try:
                await self.handler(msg)
                await msg.ack()  # redelivery after a lost ack is harmless: handlers are idempotent
                self.handled += 1
                log.debug("handled %s job=%s delivery=%d", msg.subject, job, n)
            except PermanentError as exc:
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
                await self._give_up(msg, f"invalid message: {exc}")
            except Exception as exc:  # noqa: BLE001 - any other failure: retried, then dead-lettered
                span.record_exception(exc)
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
                if n >= self.max_deliver:
                    await self._give_up(msg, f"failed {n} times, last: {type(exc).__name__}: {exc}")
                else:
                    log.warning("%s: job %s delivery %d failed (%s), will retry", self.role, job, n, exc)
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=min(0.5 * 2**n, 10.0))
            finally:
                beat.cancel()
                self.busy -= 1
                telemetry.record("mephisto.step.latency", (time.perf_counter() - t0) * 1e3, role=self.role)

    async def _give_up(self, msg: Msg, reason: str) -> None:
        try:
            await self.bus.dead_letter(self.role, msg.subject, msg.data, msg.headers, _deliveries(msg), reason)
            await msg.term()
        except Exception as exc:  # noqa: BLE001 - NATS down: leave it for redelivery
            log.warning("%s: could not dead-letter (%s)", self.role, exc)

    async def _heartbeat(self, msg: Msg) -> None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            while True:
                await asyncio.sleep(self.ack_wait / 3)
                await msg.in_progress()


def _stream_of(subject: str) -> str:
    for prefix, stream in ((WORK, STREAM_WORK), (ALERTS, STREAM_ALERTS), (DLQ, STREAM_DLQ), (EVENTS, STREAM_EVENTS)):
        if subject.startswith(prefix + "."):
            return stream
    raise ValueError(f"{subject}: no stream carries it")


def _deliveries(msg: Msg) -> int:
    try:
        return int(msg.metadata.num_delivered)
    except Exception:  # noqa: BLE001 - not a JetStream message: its first delivery
        return 1


async def _log_error(exc: Exception) -> None:
    log.debug("nats: %s", exc)


async def _log_disconnect() -> None:
    log.info("nats: disconnected, reconnecting")
