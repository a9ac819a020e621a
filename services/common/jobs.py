"""Job records, registered search spaces and progress events in NATS (shared by roles and gateway)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from mephisto_sed.agents.space import SearchSpace
from mephisto_sed.api.v1 import mephisto_pb2 as pb

from . import codec
from .bus import EVENTS, KV_JOBS, KV_SPACES, KV_SPECS, Bus, PermanentError

M = TypeVar("M", bound=Message)


def parse(cls: type[M], data: bytes) -> M:
    """A protobuf message from bytes; garbage is a PermanentError (dead-lettered, never retried)."""
    msg = cls()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise PermanentError(f"not a {cls.DESCRIPTOR.full_name}: {exc}") from None
    return msg


MAX_CACHED_SPACES = 64  # a batch shares one space: a handful are in use at any time
MAX_SPACE_JSON = 256 * 1024


class Spaces:
    """Search spaces by id: registered once in the ``mephisto_spaces`` bucket, cached per process."""

    def __init__(self, bus: Bus | None, max_cached: int = MAX_CACHED_SPACES):
        self.bus = bus
        self.cache: OrderedDict[str, SearchSpace] = OrderedDict()  # least recently used first
        self.max_cached = max_cached

    def _keep(self, sid: str, space: SearchSpace) -> SearchSpace:
        self.cache[sid] = space
        self.cache.move_to_end(sid)
        while len(self.cache) > self.max_cached:
            self.cache.popitem(last=False)
        return space

    async def register(self, space: SearchSpace) -> pb.SearchSpaceRef:
        text = codec.space_to_json(space)
        sid = codec.space_id(text)
        if sid not in self.cache:
            if self.bus is not None:
                await self.bus.kv[KV_SPACES].put(sid, text.encode())
            self._keep(sid, codec.space_from_json(text))
        return pb.SearchSpaceRef(space_id=sid)

    async def get(self, ref: pb.SearchSpaceRef) -> SearchSpace:
        if ref.space_json:
            if len(ref.space_json) > MAX_SPACE_JSON:
                raise PermanentError(f"configuration.space.space_json: over {MAX_SPACE_JSON // 1024} KiB")
            sid = codec.space_id(ref.space_json)
            if sid in self.cache:
                return self._keep(sid, self.cache[sid])
            try:
                return self._keep(sid, codec.space_from_json(ref.space_json))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise PermanentError(f"configuration.space.space_json: {exc}") from None
        sid = ref.space_id
        if not sid:
            raise PermanentError("configuration.space: neither space_id nor space_json given")
        if sid not in self.cache:
            if self.bus is None:
                raise PermanentError(f"configuration.space.space_id {sid!r}: unknown")
            try:
                entry = await self.bus.kv[KV_SPACES].get(sid)
            except KeyNotFoundError:
                raise PermanentError(f"configuration.space.space_id {sid!r}: unknown") from None
            return self._keep(sid, codec.space_from_json(entry.value.decode()))
        return self._keep(sid, self.cache[sid])


async def get_spec(bus: Bus, job_id: str) -> pb.JobSpec:
    try:
        entry = await bus.kv[KV_SPECS].get(job_id)
    except KeyNotFoundError:
        raise PermanentError(f"job_id {job_id!r}: no such job") from None
    return parse(pb.JobSpec, entry.value)


async def get_job(bus: Bus, job_id: str) -> pb.Job | None:
    try:
        entry = await bus.kv[KV_JOBS].get(job_id)
    except KeyNotFoundError:
        return None
    return parse(pb.Job, entry.value)


FINAL_STATUSES = (pb.JOB_STATUS_DONE, pb.JOB_STATUS_FAILED)


async def update_job(
    bus: Bus, job_id: str, change: Callable[[pb.Job | None], pb.Job | None], attempts: int = 32
) -> tuple[pb.Job | None, bool]:
    """Read-modify-write of a job record with a revision check, so the gateway and the proposers
    never overwrite each other's changes: ``change`` gets a copy of the record (None when there is
    none) and returns the new record, or None to leave it as it is. Returns (record, changed)."""
    kv = bus.kv[KV_JOBS]
    for _ in range(attempts):
        try:
            entry = await kv.get(job_id)
            current, revision = parse(pb.Job, entry.value), entry.revision
        except KeyNotFoundError:
            current, revision = None, 0
        draft = None
        if current is not None:
            draft = pb.Job()
            draft.CopyFrom(current)
        new = change(draft)
        if new is None:
            return current, False
        new.updated_unix = time.time()
        try:
            if revision:
                await kv.update(job_id, new.SerializeToString(), last=revision)
            else:
                await kv.create(job_id, new.SerializeToString())
            return new, True
        except KeyWrongLastSequenceError:  # written meanwhile: read it again
            continue
    raise RuntimeError(f"job {job_id}: its record kept changing underneath")


def after_step(job: pb.Job, step: int, models: int, reduced_chi_square: float) -> pb.Job:
    """A job's record once step ``step`` has been recorded: running (unless already finished — a
    late step never turns a finished job back), its steps, models and best χ² so far."""
    if job.status not in FINAL_STATUSES:
        job.status = pb.JOB_STATUS_RUNNING
    job.steps = max(job.steps, step + 1)
    job.models_evaluated += models
    job.best_reduced_chi_square = min(job.best_reduced_chi_square or float("inf"), reduced_chi_square)
    return job


def finished(job: pb.Job, result: pb.SourceResult) -> pb.Job | None:
    """A job's record once its search stopped with ``result``; None when it was already done."""
    if job.status == pb.JOB_STATUS_DONE:
        return None
    job.status, job.error = pb.JOB_STATUS_DONE, ""
    job.steps, job.models_evaluated = result.steps, result.models_evaluated
    job.best_reduced_chi_square = result.reduced_chi_square
    job.result.CopyFrom(result)
    return job


async def publish_event(bus: Bus, event: pb.ProgressEvent, msg_id: str | None = None) -> None:
    event.time_unix = event.time_unix or time.time()
    await bus.publish(f"{EVENTS}.{event.job_id}", event.SerializeToString(), msg_id=msg_id, job_id=event.job_id)


def event(job_id: str, source_id: str, kind: str, **kw: Any) -> pb.ProgressEvent:
    return pb.ProgressEvent(job_id=job_id, source_id=source_id, kind=kind, **kw)
