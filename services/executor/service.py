"""Executor role: ExecuteRequest -> FitResult; the worker forwards it to the evaluators."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from nats.aio.msg import Msg

from mephisto_sed.agents.execute import execute
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.api.v1 import mephisto_pb2_grpc as pb_grpc
from mephisto_sed.config import ConfigError

from ..common import codec, telemetry
from ..common.bus import SUBJECT, Bus, PermanentError
from ..common.grpc_server import answer
from ..common.jobs import Spaces, parse
from ..common.settings import Settings


class Executor(pb_grpc.ExecutorServicer):
    service_names = [pb.DESCRIPTOR.services_by_name["Executor"].full_name]

    def __init__(self, bus: Bus, settings: Settings | None = None):
        self.bus = bus
        self.spaces = Spaces(bus)
        # a search step is at most Budget.max_models_per_step (50k) or the posterior box (120k): a
        # request for far more is not a step (12.7M models held an executor for minutes)
        self.max_models = (settings or Settings("executor")).max_models_per_execute

    async def execute(self, req: pb.ExecuteRequest) -> pb.FitResult:
        space = await self.spaces.get(req.configuration.space)
        try:
            state = codec.configuration_state(req.configuration)
            size = space.size(state)
            if size > self.max_models:
                raise PermanentError(f"configuration: {size:,} models exceed the cap of {self.max_models:,}")
            space.to_config(state)  # validates modules, indices and bounds before any engine work
        except (ConfigError, KeyError, IndexError, ValueError, TypeError) as exc:
            raise PermanentError(f"configuration.state_json: {exc}") from None
        if not req.observation.HasField("redshift"):
            raise PermanentError("observation.redshift: missing")
        source = codec.observation_to_source(req.observation, space.bands)
        ex = await asyncio.to_thread(execute, space, state, source)
        telemetry.add("mephisto.models.evaluated", ex.n_models)
        return codec.fit_to_proto(ex)

    # -- gRPC --------------------------------------------------------------------------------
    async def Execute(self, request: pb.ExecuteRequest, context: grpc.aio.ServicerContext) -> pb.FitResult:
        return await answer(context, "Executor/Execute", self.execute, request, **{"mephisto.job.id": request.job_id})

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_ExecutorServicer_to_server(self, server)

    # -- JetStream ---------------------------------------------------------------------------
    async def on_message(self, msg: Msg) -> None:
        req = parse(pb.ExecuteRequest, msg.data)
        fit = await self.execute(req)
        out = pb.EvaluateRequest(
            job_id=req.job_id, step=req.step, observation=req.observation, configuration=req.configuration, fit=fit
        )
        await self.bus.publish(
            SUBJECT["evaluate"], out.SerializeToString(), msg_id=f"{req.job_id}.{req.step}.evaluate", job_id=req.job_id
        )

    def workers(self) -> list[tuple[str, Any]]:
        return [(SUBJECT["execute"], self.on_message)]


def make_role(bus: Bus, settings: Settings) -> Executor:
    return Executor(bus, settings)
