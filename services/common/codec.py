"""Conversions between the protobuf contract (mephisto_sed/api/v1) and mephisto_sed's objects.

Full records travel as JSON inside the contract's ``*_json`` fields: Python's JSON round-trips
floats exactly (NaN and infinities included), so a step fitted in another process is bit-identical
to one fitted in-process. Each such field holds one typed record of the core (``JSON_FIELDS``), the
one definition of its shape: ``scripts/gen_protos.py`` writes their JSON Schemas beside the proto
(``records.schema.json``) for clients in other languages, and a test checks every ``*_json`` field
of the proto is listed here.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

import numpy as np

from mephisto_sed.agents.actions import Action
from mephisto_sed.agents.agentfit import result_row
from mephisto_sed.agents.evaluate import Evaluation
from mephisto_sed.agents.execute import Execution, Source
from mephisto_sed.agents.policy import Outcomes
from mephisto_sed.agents.records import dump, load
from mephisto_sed.agents.search import SearchResult, TraceRecord, json_default
from mephisto_sed.agents.space import SearchSpace, State
from mephisto_sed.api.v1 import mephisto_pb2 as pb

BestModelValues = dict[str, dict[str, Any]]  # {module: {parameter: value}}
ResultRow = dict[str, float | int | str | bool | None]  # the columns of `mephisto-sed fit`'s results.csv

# every JSON string of the contract and the record it holds ("Message.field": type)
JSON_FIELDS: dict[str, Any] = {
    "SearchSpaceRef.space_json": SearchSpace,
    "Configuration.state_json": State,
    "Action.action_json": Action,
    "FitResult.best_model_json": BestModelValues,
    "FitResult.detail_json": Execution,
    "Evaluation.detail_json": Evaluation,
    "KnowledgeEntry.action_json": Action,
    "SearchKnowledgeReply.outcomes_json": Outcomes,
    "SourceResult.row_json": ResultRow,
    "SourceResult.best_model_json": BestModelValues,
    "SourceResult.trace_json": TraceRecord,
    "SourceResult.best_fit_json": Execution,
    "SourceResult.best_state_json": State,
}


def json_schemas() -> dict[str, Any]:
    """The JSON Schema of every ``*_json`` field's record, keyed ``Message.field``."""
    from pydantic import TypeAdapter

    return {name: TypeAdapter(kind).json_schema(mode="serialization") for name, kind in JSON_FIELDS.items()}


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=json_default, separators=(",", ":"))


def pack(obj: Any) -> bytes:
    """Compressed JSON for key-value records (a search tree is ~100 kB raw)."""
    return zlib.compress(dumps(obj).encode(), 6)


def unpack(data: bytes) -> Any:
    return json.loads(zlib.decompress(data))


# -- search spaces ------------------------------------------------------------------------------
def space_to_json(space: SearchSpace) -> str:
    return dumps(dump(space))


def space_from_json(text: str) -> SearchSpace:
    return load(SearchSpace, json.loads(text))


def space_id(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:20]


# -- observations -------------------------------------------------------------------------------
def observation_to_source(obs: pb.Observation, bands: list[str]) -> Source:
    """A Source over the space's ``bands`` (NaN where the observation lacks a band)."""
    given = {b.filter: b for b in obs.bands}
    flux = np.array([given[b].flux_mjy if b in given else np.nan for b in bands], dtype=float)
    err = np.array([given[b].error_mjy if b in given else np.nan for b in bands], dtype=float)
    ul = np.array([bool(given[b].upper_limit) if b in given else False for b in bands], dtype=bool)
    z = float(obs.redshift) if obs.HasField("redshift") else float("nan")  # none: a photometric one is found
    return Source(obs.source_id, z, list(bands), flux, err, ul)


def source_to_observation(src: Source, metadata: dict[str, str] | None = None) -> pb.Observation:
    bands = [
        pb.BandFlux(filter=b, flux_mjy=float(f), error_mjy=float(e), upper_limit=bool(u))
        for b, f, e, u in zip(src.bands, src.flux, src.err, src.upper_limit)
        if np.isfinite(f)
    ]
    obs = pb.Observation(source_id=src.id, bands=bands, metadata=metadata or {})
    if np.isfinite(src.redshift):
        obs.redshift = float(src.redshift)
    return obs


# -- configurations, fits, evaluations ----------------------------------------------------------
def configuration(space_ref: pb.SearchSpaceRef, space: SearchSpace, state: State) -> pb.Configuration:
    return pb.Configuration(
        space=space_ref, modules=list(state.modules), state_json=dumps(dump(state)), n_models=space.size(state)
    )


def configuration_state(cfg: pb.Configuration) -> State:
    return load(State, json.loads(cfg.state_json))


def fit_to_proto(ex: Execution) -> pb.FitResult:
    return pb.FitResult(
        n_models=int(ex.n_models),
        chi2=float(ex.chi2),
        reduced_chi_square=float(ex.chi2_red),
        best_model_json=dumps(ex.best_model),
        seconds=float(ex.seconds),
        detail_json=dumps(dump(ex)),
    )


def fit_from_proto(fit: pb.FitResult) -> Execution:
    return load(Execution, json.loads(fit.detail_json))


def evaluation_to_proto(ev: Evaluation) -> pb.Evaluation:
    return pb.Evaluation(
        reduced_chi_square=float(ev.chi2_red),
        patterns=list(ev.patterns),
        plausibility=list(ev.plausibility),
        n_effective=float(ev.n_effective),
        score=float(ev.score),
        summary=ev.summary(),
        signature=[float(x) for x in ev.signature()],
        detail_json=dumps(dump(ev)),
    )


def evaluation_from_proto(ev: pb.Evaluation) -> Evaluation:
    return load(Evaluation, json.loads(ev.detail_json))


# -- results ------------------------------------------------------------------------------------
def result_to_proto(job_id: str, res: SearchResult) -> pb.SourceResult:
    return pb.SourceResult(
        job_id=job_id,
        source_id=res.source.id,
        redshift=float(res.source.redshift),
        anomaly=bool(res.anomaly),
        anomaly_reason=res.anomaly_reason,
        stop_reason=res.stop_reason,
        modules=list(res.best.state.modules),
        models_evaluated=int(res.models_evaluated),
        steps=int(res.steps),
        tokens=int(res.tokens),
        reduced_chi_square=float(res.best.evaluation.chi2_red),
        row_json=dumps(result_row(res)),
        best_model_json=dumps(res.best.execution.best_model),
        policy=res.policy,
        trace_json=res.trace_json(),
        trace_markdown=res.trace_markdown(),
        best_fit_json=dumps(dump(res.best.execution)),
        best_state_json=dumps(dump(res.best.state)),
    )
