"""Distiller role: the only owner of the knowledge store (Qdrant local mode locks its folder; a
Qdrant server via QDRANT_URL works the same). Distills finished jobs and answers knowledge
queries: gRPC SearchKnowledge and NATS request/reply on ``mephisto.rpc.knowledge`` (proposers)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

import grpc
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError

from mephisto_sed.agents.distill import distill
from mephisto_sed.agents.domain import Domain
from mephisto_sed.agents.evaluate import SIGNATURE_SIZE, checked_levels
from mephisto_sed.agents.knowledge import KnowledgeBase
from mephisto_sed.agents.policy import ExpertPolicy
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.api.v1 import mephisto_pb2_grpc as pb_grpc

from ..common.bus import KV_DISTILLED, RPC_KNOWLEDGE, SUBJECT, Bus, PermanentError
from ..common.grpc_server import answer
from ..common.jobs import Spaces, get_spec, parse
from ..common.settings import Settings
from ..common.treestore import TreeStore

log = logging.getLogger(__name__)


class Distiller(pb_grpc.DistillerServicer):
    service_names = [pb.DESCRIPTOR.services_by_name["Distiller"].full_name]

    def __init__(self, bus: Bus, settings: Settings | None = None, kb: KnowledgeBase | None = None):
        self.bus = bus
        self.spaces = Spaces(bus)
        self.kb = kb or KnowledgeBase(settings.knowledge_path if settings else None)
        self.lock = asyncio.Lock()  # the Qdrant local client is used from one thread at a time
        # with an LLM configured, the rules that helped are stored in an astronomer's words
        url = settings.llm_url if settings else ""
        self.words = None
        if url:
            from mephisto_sed.llm import backend_from_url

            self.words = backend_from_url(url)
        self.sub: Any = None

    async def start(self) -> None:
        self.sub = await self.bus.nc.subscribe(RPC_KNOWLEDGE, queue="distillers", cb=self._on_request)

    async def close(self) -> None:
        if self.sub is not None:
            await self.sub.unsubscribe()
        self.kb.close()

    # -- handlers ------------------------------------------------------------------------------
    async def distill(self, req: pb.DistillRequest) -> pb.DistillReply:
        try:
            await self.bus.kv[KV_DISTILLED].get(req.job_id)
            return pb.DistillReply(duplicate=True)
        except KeyNotFoundError:
            pass
        spec = await get_spec(self.bus, req.job_id)
        space = await self.spaces.get(pb.SearchSpaceRef(space_id=spec.space_id))
        tree, _ = await TreeStore(self.bus).load(req.job_id, space, ExpertPolicy())
        if tree is None:
            raise PermanentError(f"job_id {req.job_id!r}: no search record")
        if tree.pending is not None or not tree.nodes:
            raise PermanentError(f"job_id {req.job_id!r}: the search has not finished")
        async with self.lock:
            n = await asyncio.to_thread(distill, tree.result(), self.kb, self.words)
        # marked after storing: a crash in between distills the job again (evidence counted twice),
        # never loses it
        await self.bus.kv[KV_DISTILLED].put(req.job_id, str(n).encode())
        return pb.DistillReply(observations=n)

    async def search(self, req: pb.SearchKnowledgeRequest) -> pb.SearchKnowledgeReply:
        limit = max(1, min(req.limit or 12, 200))
        async with self.lock:
            if req.signature:
                if len(req.signature) != SIGNATURE_SIZE or not all(map(math.isfinite, req.signature)):
                    raise PermanentError(f"signature: expected {SIGNATURE_SIZE} finite numbers")
                found = await asyncio.to_thread(self.kb.search, list(req.signature), limit * 4)
            elif req.HasField("outcomes_at_redshift"):
                found = []  # a first-look prior only: no need to list every rule
            else:
                found = [(r, 0.0) for r in await asyncio.to_thread(self.kb.all)]
        if req.text_contains:
            found = [(r, s) for r, s in found if req.text_contains.lower() in r.text.lower()]
        domain = _domain(req)
        if domain is not None:
            found = [(r, s) for r, s in found if r.applies_to(domain)]
        outcomes = ""
        if req.HasField("outcomes_at_redshift"):
            if not math.isfinite(req.outcomes_at_redshift) or req.outcomes_at_redshift < 0:
                raise PermanentError("outcomes_at_redshift: expected a finite redshift >= 0")
            async with self.lock:
                try:
                    levels = checked_levels(req.levels) if req.levels else None
                except ValueError as exc:
                    raise PermanentError(str(exc)) from None
                found_outcomes = await asyncio.to_thread(
                    self.kb.outcomes, req.outcomes_at_redshift, 200, domain, levels
                )
                outcomes = json.dumps(found_outcomes)
        return pb.SearchKnowledgeReply(
            outcomes_json=outcomes,
            entries=[
                pb.KnowledgeEntry(
                    id=str(r.id),
                    text=r.text,
                    action_json=json.dumps(r.action),
                    tried=r.tried,
                    helped=r.helped,
                    mean_gain=r.mean_gain,
                    sources=list(r.sources)[:50],
                    similarity=s,
                    signature=[float(x) for x in r.signature],
                    mean_models=r.mean_models,
                    domains=[pb.Domain(redshift=d[0], rest_min_um=d[1], rest_max_um=d[2]) for d in r.domains[:50]],
                )
                for r, s in found[:limit]
            ],
        )

    async def _on_request(self, msg: Msg) -> None:
        try:
            reply = await self.search(parse(pb.SearchKnowledgeRequest, msg.data))
        except PermanentError as exc:
            log.info("bad knowledge request: %s", exc)
            reply = pb.SearchKnowledgeReply()
        await msg.respond(reply.SerializeToString())

    # -- gRPC --------------------------------------------------------------------------------
    async def Distill(self, request: pb.DistillRequest, context: grpc.aio.ServicerContext) -> pb.DistillReply:
        return await answer(context, "Distiller/Distill", self.distill, request, **{"mephisto.job.id": request.job_id})

    async def SearchKnowledge(
        self, request: pb.SearchKnowledgeRequest, context: grpc.aio.ServicerContext
    ) -> pb.SearchKnowledgeReply:
        return await answer(context, "Distiller/SearchKnowledge", self.search, request)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_DistillerServicer_to_server(self, server)

    async def on_message(self, msg: Msg) -> None:
        await self.distill(parse(pb.DistillRequest, msg.data))

    def workers(self) -> list[tuple[str, Any]]:
        return [(SUBJECT["distill"], self.on_message)]


def make_role(bus: Bus, settings: Settings) -> Distiller:
    return Distiller(bus, settings)


def _domain(req: pb.SearchKnowledgeRequest) -> Domain | None:
    """The request's domain, or None when it asks for every rule; a malformed one is refused."""
    if not req.HasField("domain"):
        return None
    d = req.domain
    values = (d.redshift, d.rest_min_um, d.rest_max_um)
    if not all(map(math.isfinite, values)) or d.redshift < 0 or not 0 < d.rest_min_um <= d.rest_max_um:
        raise PermanentError("domain: expected a redshift >= 0 and 0 < rest_min_um <= rest_max_um")
    return Domain(*values)
