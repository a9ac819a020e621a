"""Gateway: the public gRPC API, alert ingestion and failed-job bookkeeping."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from nats.aio.msg import Msg
from nats.js.errors import KeyWrongLastSequenceError

from mephisto_sed.agents.evaluate import SIGNATURE_SIZE, checked_levels
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.api.v1 import mephisto_pb2_grpc as pb_grpc
from services.common import telemetry
from services.common.bus import (
    ALERTS,
    DLQ,
    EVENTS,
    H_JOB,
    H_REASON,
    KV_IDEMPOTENCY,
    KV_SPECS,
    RPC_KNOWLEDGE,
    STREAM_EVENTS,
    STREAM_WORK,
    SUBJECT,
    Bus,
    PermanentError,
)
from services.common.grpc_server import abort, server_span
from services.common.guard import BUS_UNAVAILABLE
from services.common.jobs import Spaces, event, get_job, parse, publish_event, update_job
from services.common.settings import Settings

from .alerts import BadAlert, parse_alert
from .validation import Invalid, check_submit

log = logging.getLogger(__name__)
GATEWAY = pb.DESCRIPTOR.services_by_name["Gateway"].full_name
FINAL = (pb.JOB_STATUS_DONE, pb.JOB_STATUS_FAILED)


class Gateway(pb_grpc.GatewayServicer):
    service_names = [GATEWAY]

    def __init__(self, bus: Bus, settings: Settings):
        self.bus, self.settings = bus, settings
        self.spaces = Spaces(bus)

    # -- submission (shared by gRPC and alerts) -------------------------------------------------
    async def submit(self, req: pb.SubmitBatchRequest, scope: str = "") -> pb.SubmitBatchReply:
        space = await asyncio.to_thread(check_submit, req, self.settings.max_sources)
        ref = await self.spaces.register(space)
        idem = None
        if req.idempotency_key:
            idem = hashlib.sha1(f"{scope}\0{req.idempotency_key}".encode()).hexdigest()
            ids = [hashlib.sha1(f"{idem}:{i}".encode()).hexdigest()[:24] for i in range(len(req.sources))]
        else:
            ids = [uuid.uuid4().hex[:24] for _ in req.sources]
        reply = pb.SubmitBatchReply(job_ids=ids)
        if idem is not None:
            reply, ids = await self._claim(idem, req, reply)
        now = time.time()
        new = 0
        with telemetry.tracer().start_as_current_span("submit batch") as span:
            span.set_attribute("mephisto.sources", len(ids))
            for job_id, obs in zip(ids, req.sources):
                spec = pb.JobSpec(
                    job_id=job_id,
                    observation=obs,
                    space_id=ref.space_id,
                    budget=req.budget,
                    seed=req.seed,
                    created_unix=now,
                )
                new += await self._start_job(spec)
        if new:
            telemetry.add("mephisto.jobs.submitted", new)
            telemetry.add("mephisto.jobs.in_flight", new)
        return reply

    async def _claim(
        self, idem: str, req: pb.SubmitBatchRequest, reply: pb.SubmitBatchReply
    ) -> tuple[pb.SubmitBatchReply, list[str]]:
        """Record the key's batch, or return the batch recorded under it; a key used before with
        another payload is refused (it would silently return the other batch's jobs)."""
        body = pb.SubmitBatchRequest()
        body.CopyFrom(req)
        body.idempotency_key = ""
        digest = hashlib.sha256(body.SerializeToString(deterministic=True)).hexdigest()
        record = json.dumps({"request_sha256": digest, "job_ids": list(reply.job_ids)}).encode()
        try:
            await self.bus.kv[KV_IDEMPOTENCY].create(idem, record)
            return reply, list(reply.job_ids)
        except KeyWrongLastSequenceError:
            pass
        old = json.loads((await self.bus.kv[KV_IDEMPOTENCY].get(idem)).value)
        if old.get("request_sha256") != digest:
            raise Invalid(
                f"idempotency_key {req.idempotency_key[:80]!r}: already used for a different request "
                "(a retry must send the same batch)"
            )
        return pb.SubmitBatchReply(job_ids=old["job_ids"], duplicate=True), list(old["job_ids"])

    async def _start_job(self, spec: pb.JobSpec) -> int:
        """Create the job and its first message; every part is idempotent. Returns 1 if new."""
        job_id, sid = spec.job_id, spec.observation.source_id
        with telemetry.tracer().start_as_current_span(f"job {job_id}") as span:
            span.set_attribute("mephisto.job.id", job_id)
            span.set_attribute("mephisto.source.id", sid)
            try:
                await self.bus.kv[KV_SPECS].create(job_id, spec.SerializeToString())
                fresh = 1
            except KeyWrongLastSequenceError:
                fresh = 0
            queued = pb.Job(job_id=job_id, source_id=sid, status=pb.JOB_STATUS_QUEUED, created_unix=spec.created_unix)
            job, _ = await update_job(self.bus, job_id, lambda old: queued if old is None else None)
            if job is not None and job.status != pb.JOB_STATUS_QUEUED:  # a retry of a started job: nothing to re-emit
                return fresh
            await publish_event(self.bus, event(job_id, sid, "queued", step=-1), msg_id=f"{job_id}.queued")
            await self.bus.publish(
                SUBJECT["advance"],
                pb.AdvanceRequest(job_id=job_id, step=-1).SerializeToString(),
                msg_id=f"{job_id}.start",
                job_id=job_id,
            )
        return fresh

    # -- gRPC --------------------------------------------------------------------------------
    async def SubmitBatch(self, request: pb.SubmitBatchRequest, context: grpc.aio.ServicerContext) -> Any:
        with server_span("Gateway/SubmitBatch", context, **{"mephisto.sources": len(request.sources)}):
            try:
                return await self.submit(request, scope=_caller(context))
            except Invalid as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    async def GetJob(self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext) -> Any:
        with server_span("Gateway/GetJob", context, **{"mephisto.job.id": request.job_id}):
            job = await self._job_or_abort(request.job_id, context)
            return job

    async def _job_or_abort(self, job_id: str, context: grpc.aio.ServicerContext) -> pb.Job:
        if not _is_job_id(job_id):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "job_id: empty or not a job id")
        job = await get_job(self.bus, job_id)
        if job is None:
            await abort(context, grpc.StatusCode.NOT_FOUND, f"job_id {job_id!r}: no such job")
        return job

    async def WatchJob(self, request: pb.WatchJobRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        job = await self._job_or_abort(request.job_id, context)
        sub = await self.bus.js.subscribe(f"{EVENTS}.{job.job_id}", stream=STREAM_EVENTS, ordered_consumer=True)
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=5.0)
                except TimeoutError:  # quiet job (nats' timeout is one): check it has not ended without an event
                    latest = await get_job(self.bus, request.job_id)
                    if latest is not None and latest.status == pb.JOB_STATUS_FAILED:
                        yield event(latest.job_id, latest.source_id, "failed", message=latest.error)
                        return
                    continue
                ev = parse(pb.ProgressEvent, msg.data)
                yield ev
                if ev.kind in ("done", "failed"):
                    return
        finally:
            await sub.unsubscribe()

    async def GetResults(self, request: pb.GetResultsRequest, context: grpc.aio.ServicerContext) -> Any:
        with server_span("Gateway/GetResults", context):
            if len(request.job_ids) > self.settings.max_sources:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"job_ids: {len(request.job_ids)} ids exceed the limit of {self.settings.max_sources}",
                )
            for i, job_id in enumerate(request.job_ids):
                if not _is_job_id(job_id):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"job_ids[{i}]: empty or not a job id")
            out = pb.GetResultsReply()
            size = 0
            for i, job_id in enumerate(request.job_ids):
                job = await get_job(self.bus, job_id)
                if job is None:
                    await abort(context, grpc.StatusCode.NOT_FOUND, f"job_ids[{i}]: no job {job_id!r}")
                if job.status != pb.JOB_STATUS_DONE:
                    out.pending.append(job)
                    continue
                n = job.result.ByteSize()
                # past the size limit, this and every later result wait for the next call: results
                # come back in the order asked for (a smaller later one must not overtake)
                if out.not_sent or (out.results and size + n > self.settings.max_reply_bytes):
                    out.not_sent.append(job_id)  # the client asks again for these
                    continue
                out.results.append(job.result)
                size += n
            return out

    async def SearchKnowledge(self, request: pb.SearchKnowledgeRequest, context: grpc.aio.ServicerContext) -> Any:
        with server_span("Gateway/SearchKnowledge", context):
            if request.signature and len(request.signature) != SIGNATURE_SIZE:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"signature: expected {SIGNATURE_SIZE} numbers")
            if request.HasField("outcomes_at_redshift") and not 0 <= request.outcomes_at_redshift < 1e3:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "outcomes_at_redshift: expected a redshift >= 0")
            if request.HasField("domain"):
                d = request.domain
                if not (0 <= d.redshift < 1e3 and 0 < d.rest_min_um <= d.rest_max_um < 1e6):
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "domain: expected a redshift >= 0 and 0 < rest_min_um <= rest_max_um",
                    )
            try:
                checked_levels(request.levels)
            except ValueError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            try:
                msg = await self.bus.nc.request(RPC_KNOWLEDGE, request.SerializeToString(), timeout=5.0)
            except BUS_UNAVAILABLE:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "no distiller answered")
            return parse(pb.SearchKnowledgeReply, msg.data)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_GatewayServicer_to_server(self, server)

    # -- alerts and dead letters -----------------------------------------------------------------
    async def on_alert(self, msg: Msg) -> None:
        try:
            alert_id, obs = parse_alert(msg.data)
            req = pb.SubmitBatchRequest(sources=[obs], idempotency_key=f"alert:{alert_id}")
            await self.submit(req, scope="alerts")
        except (BadAlert, Invalid) as exc:
            raise PermanentError(str(exc)) from None

    async def on_dead_letter(self, msg: Msg) -> None:
        """A job whose message was dead-lettered has failed: say so to its watchers."""
        headers = msg.headers or {}
        job_id = headers.get(H_JOB, "")
        if not job_id:
            return
        reason = headers.get(H_REASON, "dead-lettered")

        def fail(job: pb.Job | None) -> pb.Job | None:
            if job is None or job.status in FINAL:
                return None
            job.status, job.error = pb.JOB_STATUS_FAILED, reason
            return job

        try:
            job, changed = await update_job(self.bus, job_id, fail)
            if not changed or job is None:
                return
            telemetry.add("mephisto.jobs.completed", status="failed")
            telemetry.add("mephisto.jobs.in_flight", -1)
            await publish_event(
                self.bus, event(job_id, job.source_id, "failed", message=job.error), msg_id=f"{job_id}.failed"
            )
        except Exception as exc:  # noqa: BLE001 - never dead-letter a dead letter
            log.warning("dead letter for job %s not recorded: %s", job_id, exc)

    async def on_max_deliveries(self, msg: Msg) -> None:
        """JetStream gave up on a work message that no worker acked (workers crashed or hung on
        its last delivery): dead-letter it with that reason and take it off the work queue."""
        try:
            adv = json.loads(msg.data)
            stream, seq = adv["stream"], int(adv["stream_seq"])
            raw = await self.bus.js.get_msg(stream, seq)
        except Exception as exc:  # noqa: BLE001 - already gone, or not an advisory we understand
            log.info("max-deliveries advisory not handled: %s", exc)
            return
        role = str(adv.get("consumer", "unknown")).removeprefix("mephisto-")
        deliveries = adv.get("deliveries", "?")
        reason = f"delivered {deliveries} times without an ack (workers crashed or hung)"
        await self.bus.dead_letter(role, raw.subject or "", raw.data or b"", raw.headers, deliveries, reason)
        with contextlib.suppress(Exception):
            await self.bus.js.delete_msg(stream, seq)

    def background(self, stop: asyncio.Event) -> list[Any]:
        async def advisories() -> None:
            sub = await self.bus.nc.subscribe(
                f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM_WORK}.*",
                queue="gateways",
                cb=self.on_max_deliveries,
            )
            await stop.wait()
            await sub.unsubscribe()

        return [advisories()]

    def workers(self) -> list[tuple[str, Any, str]]:
        return [
            (f"{ALERTS}.>", self.on_alert, "alerts"),
            (f"{DLQ}.>", self.on_dead_letter, "gateway-dlq"),
        ]


def _is_job_id(job_id: str) -> bool:
    return 0 < len(job_id) <= 64 and all(c.isascii() and (c.isalnum() or c in "-_") for c in job_id)


def _caller(context: grpc.aio.ServicerContext) -> str:
    md = dict(context.invocation_metadata() or ())
    return hashlib.sha1(str(md.get("authorization", "")).encode()).hexdigest()


def make_role(bus: Bus, settings: Settings) -> Gateway:
    return Gateway(bus, settings)
