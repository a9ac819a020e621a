"""Proposer role: keeps each job's tree search (a revision-checked record in the ``mephisto_search``
bucket, so any replica can continue any job), records each evaluated step and chooses the next
configuration with the policy, ranked by knowledge from the distillers.

Advance is idempotent: a step already recorded (a redelivery) changes nothing and the worker
re-publishes what follows it under the same message ids, which JetStream de-duplicates.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
from nats.aio.msg import Msg
from nats.js.errors import KeyWrongLastSequenceError

from mephisto_sed.agents.actions import ActionError
from mephisto_sed.agents.domain import Domain
from mephisto_sed.agents.evaluate import Evaluation, observed_levels
from mephisto_sed.agents.execute import Source
from mephisto_sed.agents.photoz_search import first_look_over_redshift, photoz_row
from mephisto_sed.agents.policy import ExpertPolicy, KnowledgeHint, Outcomes, ProposalContext
from mephisto_sed.agents.records import dump
from mephisto_sed.agents.search import Budget, KnowledgeUnavailable, Node, SearchTree, Step
from mephisto_sed.agents.space import SearchSpace
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.api.v1 import mephisto_pb2_grpc as pb_grpc

from ..common import codec, telemetry
from ..common.bus import RPC_KNOWLEDGE, SUBJECT, Bus, PermanentError
from ..common.grpc_server import answer, server_span
from ..common.jobs import Spaces, after_step, event, finished, get_spec, parse, publish_event, update_job
from ..common.settings import Settings
from ..common.treestore import TreeStore

log = logging.getLogger(__name__)
HINTS_TIMEOUT = 2.0


def make_policy(settings: Settings | None = None) -> Any:
    """The expert policy, or an LLM policy when MEPHISTO_LLM_URL is set (MEPHISTO_LLM_LARGE_URL: the
    model to escalate to); the expert stays the LLM's fallback."""
    settings = settings or Settings("proposer")
    if not settings.llm_url:
        return ExpertPolicy()
    from mephisto_sed.llm import backend_from_url
    from mephisto_sed.llm.llm_policy import LLMPolicy

    large = settings.llm_large_url
    backends = [backend_from_url(settings.llm_url)] + ([backend_from_url(large)] if large else [])
    log.info("proposer policy: LLM %s (expert fallback)", settings.llm_url)
    return LLMPolicy(backends)


class Proposer(pb_grpc.ProposerServicer):
    service_names = [pb.DESCRIPTOR.services_by_name["Proposer"].full_name]

    def __init__(self, bus: Bus, settings: Settings | None = None):
        self.bus = bus
        self.spaces = Spaces(bus)
        self.policy = make_policy(settings)
        self.use_knowledge = settings.use_knowledge if settings else False
        self.trees = TreeStore(bus)
        self.specs: OrderedDict[str, pb.JobSpec] = OrderedDict()  # immutable once written: cache them

    async def _spec(self, job_id: str) -> pb.JobSpec:
        spec = self.specs.get(job_id)
        if spec is None:
            spec = await get_spec(self.bus, job_id)
            self.specs[job_id] = spec
            while len(self.specs) > 4096:
                self.specs.popitem(last=False)
        return spec

    # -- knowledge (from the distillers, which own the Qdrant store) --------------------------
    async def _hints(self, evaluation: Evaluation, domain: pb.Domain | None) -> list[KnowledgeHint]:
        req = pb.SearchKnowledgeRequest(signature=[float(x) for x in evaluation.signature()], limit=12, domain=domain)
        try:
            reply = await self.bus.nc.request(RPC_KNOWLEDGE, req.SerializeToString(), timeout=HINTS_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - no distiller up: the step goes on without, and says so
            log.info("no knowledge hints (%s)", exc)
            raise KnowledgeUnavailable(f"no distiller answered within {HINTS_TIMEOUT:g} s") from None
        out = parse(pb.SearchKnowledgeReply, reply.data)
        return [
            KnowledgeHint(
                json.loads(e.action_json), e.similarity, e.tried, e.helped, e.mean_gain, e.text, e.mean_models
            )
            for e in out.entries
        ]

    async def _outcomes(self, source: Source, domain: pb.Domain | None) -> Outcomes:
        """Where searches of galaxies near ``source``'s redshift and like it in SED shape ended
        (places the first look, as the in-process search's ``KnowledgeBase.outcomes``)."""
        req = pb.SearchKnowledgeRequest(
            limit=1, outcomes_at_redshift=source.redshift, domain=domain, levels=observed_levels(source)
        )
        try:
            reply = await self.bus.nc.request(RPC_KNOWLEDGE, req.SerializeToString(), timeout=HINTS_TIMEOUT)
            return json.loads(parse(pb.SearchKnowledgeReply, reply.data).outcomes_json or "{}")
        except Exception as exc:  # noqa: BLE001 - no distiller up, or an old one: the plain first look
            log.info("no knowledge outcomes (%s)", exc)
            return {}

    async def _fetch_knowledge(self, node: Node, source: Source) -> None:
        """Knowledge for a node just recorded, fetched before the next step is chosen (on the event
        loop, never from inside the search) and kept with the node; its absence is kept too. Only
        what was learned on galaxies like ``source`` (as the in-process search)."""
        domain = _domain(source)
        if not self.use_knowledge or node.exhausted or domain is None:
            return
        try:
            node.hints, node.hints_missing = await self._hints(node.evaluation, domain), ""
        except KnowledgeUnavailable as exc:
            node.hints, node.hints_missing = [], f"unavailable: {exc}"

    # -- the handler ---------------------------------------------------------------------------
    async def advance(self, req: pb.AdvanceRequest) -> pb.AdvanceReply:
        spec = await self._spec(req.job_id)
        ref = pb.SearchSpaceRef(space_id=spec.space_id)
        space = await self.spaces.get(ref)
        # knowledge comes with each node (_fetch_knowledge): the tree is never given a way to ask
        for _ in range(8):  # revision conflicts: another replica wrote meanwhile
            tree, revision = await self.trees.load(req.job_id, space, self.policy)
            if tree is None:
                if req.step != -1:
                    raise PermanentError(f"step {req.step} for job {req.job_id} that was never started")
                source = codec.observation_to_source(spec.observation, space.bands)
                source, photoz = await self._redshift(source, space)
                b = spec.budget
                budget = Budget()
                budget.max_models = int(b.max_models) or budget.max_models
                budget.max_steps = int(b.max_steps) or budget.max_steps
                budget.max_tokens = int(b.max_tokens) or budget.max_tokens
                budget.max_seconds = float(b.max_seconds) or budget.max_seconds
                domain = _domain(source)
                use = self.use_knowledge and domain is not None
                outcomes = await self._outcomes(source, domain) if use else {}
                tree = SearchTree(source, space, self.policy, budget, seed=spec.seed, outcomes=_fixed(outcomes))
                tree.extra_row = photoz
                tree.check_other_redshift = not photoz  # z searched for already: no other to try
                try:
                    step: Step | None = await asyncio.to_thread(tree.begin)  # CPU work never on the loop
                except ActionError as exc:
                    raise PermanentError(str(exc)) from None
                try:
                    await self.trees.create(req.job_id, tree)
                except KeyWrongLastSequenceError:
                    continue
                return self._reply(req.job_id, ref, spec, tree, step, duplicate=False)
            pending = tree.pending
            if req.step == -1 or pending is None or pending.index != req.step:
                return self._reply(req.job_id, ref, spec, tree, pending, duplicate=True)
            try:  # JSON of a whole fit: parsed off the event loop
                ex, ev = await asyncio.to_thread(_step_from_proto, req)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise PermanentError(f"fit/evaluation detail_json: {exc}") from None
            n_before = len(tree.nodes)
            try:
                node = tree.record(pending, ex, ev)
                await self._fetch_knowledge(node, tree.source)
                step = await asyncio.to_thread(tree.next)
            except Exception:
                self.trees.forget(req.job_id)  # the in-memory tree is half-changed
                raise
            try:
                await self.trees.update(req.job_id, tree, revision, n_before)
            except KeyWrongLastSequenceError:
                continue
            if step is None:
                self.trees.forget(req.job_id)
            return self._reply(req.job_id, ref, spec, tree, step, duplicate=False)
        raise RuntimeError(f"job {req.job_id}: the search record kept changing underneath")

    async def _redshift(self, source: Source, space: SearchSpace) -> tuple[Source, dict[str, Any]]:
        """A source without a redshift gets its photometric one: the first look over every redshift
        (CPU work, off the loop); the search then runs at the peak of P(z). (The in-process ``fit``
        also searches a second peak of a multi-modal P(z); here the peak only.)"""
        if np.isfinite(source.redshift):
            return source, {}
        look = await asyncio.to_thread(first_look_over_redshift, space, source, self.policy)
        if not look.candidates:
            raise PermanentError(f"source {source.id}: no redshift fits its photometry (P(z) is empty)")
        z = round(look.candidates[0], 4)
        return dataclasses.replace(source, redshift=z), photoz_row(look, [(z, float("nan"), 0)])

    def _reply(
        self,
        job_id: str,
        ref: pb.SearchSpaceRef,
        spec: pb.JobSpec,
        tree: SearchTree,
        step: Step | None,
        duplicate: bool,
    ) -> pb.AdvanceReply:
        if step is not None:
            cfg = codec.configuration(ref, tree.space, step.state)
            obs = spec.observation
            if not obs.HasField("redshift"):  # submitted without one: the photometric redshift searched at
                obs = pb.Observation()
                obs.CopyFrom(spec.observation)
                obs.redshift = float(tree.source.redshift)
            return pb.AdvanceReply(
                execute=pb.ExecuteRequest(job_id=job_id, step=step.index, observation=obs, configuration=cfg),
                duplicate=duplicate,
            )
        return pb.AdvanceReply(done=codec.result_to_proto(job_id, tree.result()), duplicate=duplicate)

    # -- gRPC --------------------------------------------------------------------------------
    async def Advance(self, request: pb.AdvanceRequest, context: grpc.aio.ServicerContext) -> pb.AdvanceReply:
        return await answer(context, "Proposer/Advance", self.advance, request, **{"mephisto.job.id": request.job_id})

    async def Propose(self, request: pb.ProposeRequest, context: grpc.aio.ServicerContext) -> pb.ProposeReply:
        """The policy alone, stateless: proposals for one fitted configuration."""
        with server_span("Proposer/Propose", context):
            try:
                space = await self.spaces.get(request.configuration.space)
                if not request.observation.HasField("redshift"):
                    raise PermanentError("observation.redshift: missing (Propose advises on a fit at a known redshift)")
                state = codec.configuration_state(request.configuration)
                ex = codec.fit_from_proto(request.fit)
                ev = codec.evaluation_from_proto(request.evaluation)
            except PermanentError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"configuration/fit/evaluation: {exc}")
            source = codec.observation_to_source(request.observation, space.bands)
            ctx = ProposalContext(space, source, state, ev, [], [], 10**9, ex.alternatives)
            actions = (await asyncio.to_thread(self.policy.propose, ctx))[: request.max_actions or None]
            return pb.ProposeReply(
                actions=[
                    pb.Action(
                        type=a.type,
                        module=a.module or "",
                        param=a.param or "",
                        rationale=a.rationale,
                        rule=a.rule,
                        action_json=codec.dumps(dump(a)),
                    )
                    for a in actions
                ],
                tokens=int(getattr(self.policy, "last_tokens", 0)),
                policy=self.policy.name,
            )

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_ProposerServicer_to_server(self, server)

    # -- JetStream ---------------------------------------------------------------------------
    async def on_message(self, msg: Msg) -> None:
        req = parse(pb.AdvanceRequest, msg.data)
        reply = await self.advance(req)
        await self.forward(req, reply)

    async def forward(self, req: pb.AdvanceRequest, reply: pb.AdvanceReply) -> None:
        """Publish what follows a step; safe to repeat (message ids, idempotent writes)."""
        job_id = req.job_id
        spec = await self._spec(job_id)
        sid = spec.observation.source_id

        def fresh() -> pb.Job:  # the record when there is none yet: a new one each call (it gets changed)
            return pb.Job(job_id=job_id, source_id=sid, created_unix=spec.created_unix)

        if req.step >= 0 and not reply.duplicate:
            ev = req.evaluation

            def progress(job: pb.Job | None) -> pb.Job:
                return after_step(job or fresh(), req.step, req.fit.n_models, ev.reduced_chi_square)

            job, _ = await update_job(self.bus, job_id, progress)
            assert job is not None  # progress() always returns a record
            best = job.best_reduced_chi_square
            await publish_event(
                self.bus,
                event(
                    job_id,
                    sid,
                    "step",
                    step=req.step,
                    models_evaluated=job.models_evaluated,
                    reduced_chi_square=ev.reduced_chi_square,
                    best_reduced_chi_square=best,
                    message=", ".join(ev.patterns),
                ),
                msg_id=f"{job_id}.{req.step}.event",
            )
        if reply.HasField("execute"):
            nxt = reply.execute
            await self.bus.publish(
                SUBJECT["execute"], nxt.SerializeToString(), msg_id=f"{job_id}.{nxt.step}.execute", job_id=job_id
            )
            return
        res = reply.done

        def finish(job: pb.Job | None) -> pb.Job | None:
            return finished(job or fresh(), res)

        _, changed = await update_job(self.bus, job_id, finish)
        if changed:
            telemetry.add("mephisto.jobs.completed", status="done")
            telemetry.add("mephisto.jobs.in_flight", -1)
            if res.anomaly:
                telemetry.add("mephisto.anomalies")
            telemetry.add("mephisto.tokens", res.tokens, role="proposer")
            telemetry.add("mephisto.llm.cost", json.loads(res.row_json).get("llm_cost_usd", 0.0), role="proposer")
        await publish_event(
            self.bus,
            event(
                job_id,
                sid,
                "done",
                step=res.steps,
                models_evaluated=res.models_evaluated,
                best_reduced_chi_square=res.reduced_chi_square,
                message=res.anomaly_reason if res.anomaly else res.stop_reason,
            ),
            msg_id=f"{job_id}.done",
        )
        await self.bus.publish(
            SUBJECT["distill"],
            pb.DistillRequest(job_id=job_id).SerializeToString(),
            msg_id=f"{job_id}.distill",
            job_id=job_id,
        )

    def workers(self) -> list[tuple[str, Any]]:
        return [(SUBJECT["advance"], self.on_message)]


def _domain(source: Source) -> pb.Domain | None:
    """The source's domain (agents/domain.py) for knowledge requests; None without a redshift."""
    d = Domain.of(source)
    return None if d is None else pb.Domain(redshift=d.redshift, rest_min_um=d.rest_min_um, rest_max_um=d.rest_max_um)


def _fixed(outcomes: Outcomes) -> Callable[[float], Outcomes]:
    """The outcomes fetched for this source, whatever redshift the tree asks about."""
    return lambda _z: outcomes


def _step_from_proto(req: pb.AdvanceRequest) -> tuple[Any, Evaluation]:
    return codec.fit_from_proto(req.fit), codec.evaluation_from_proto(req.evaluation)


def make_role(bus: Bus, settings: Settings) -> Proposer:
    return Proposer(bus, settings)
