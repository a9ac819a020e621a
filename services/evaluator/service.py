"""Evaluator role: EvaluateRequest -> Evaluation; the worker forwards it to the proposers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
from nats.aio.msg import Msg

from mephisto_sed.agents.evaluate import evaluate
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.api.v1 import mephisto_pb2_grpc as pb_grpc

from ..common import codec
from ..common.bus import SUBJECT, Bus, PermanentError
from ..common.grpc_server import answer
from ..common.jobs import Spaces, parse
from ..common.settings import Settings


class Evaluator(pb_grpc.EvaluatorServicer):
    service_names = [pb.DESCRIPTOR.services_by_name["Evaluator"].full_name]

    def __init__(self, bus: Bus, settings: Settings | None = None):
        self.bus = bus
        self.spaces = Spaces(bus)

    async def evaluate(self, req: pb.EvaluateRequest) -> pb.Evaluation:
        space = await self.spaces.get(req.configuration.space)
        if not req.observation.HasField("redshift"):
            raise PermanentError("observation.redshift: missing")
        try:
            ex = codec.fit_from_proto(req.fit)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise PermanentError(f"fit.detail_json: {exc}") from None
        source = codec.observation_to_source(req.observation, space.bands)
        if len(source.bands) != len(ex.best.fluxes if ex.best.fluxes is not None else source.bands):
            raise PermanentError("fit.detail_json: model fluxes do not match the space's bands")
        ev = await asyncio.to_thread(evaluate, ex, source, space)
        return codec.evaluation_to_proto(ev)

    async def Evaluate(self, request: pb.EvaluateRequest, context: grpc.aio.ServicerContext) -> pb.Evaluation:
        return await answer(
            context, "Evaluator/Evaluate", self.evaluate, request, **{"mephisto.job.id": request.job_id}
        )

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_EvaluatorServicer_to_server(self, server)

    async def on_message(self, msg: Msg) -> None:
        req = parse(pb.EvaluateRequest, msg.data)
        ev = await self.evaluate(req)
        out = pb.AdvanceRequest(job_id=req.job_id, step=req.step, fit=req.fit, evaluation=ev)
        await self.bus.publish(
            SUBJECT["advance"], out.SerializeToString(), msg_id=f"{req.job_id}.{req.step}.advance", job_id=req.job_id
        )

    def workers(self) -> list[tuple[str, Any]]:
        return [(SUBJECT["evaluate"], self.on_message)]


def make_role(bus: Bus, settings: Settings) -> Evaluator:
    return Evaluator(bus, settings)
