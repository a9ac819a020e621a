"""The contract: committed stubs are what protos/ generates, and the messages round-trip."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_committed_stubs_are_current(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools is in the dev extra")
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    fresh = gen.generate(tmp_path)
    assert fresh
    for path in fresh:
        committed = ROOT / path.relative_to(tmp_path)
        assert committed.is_file(), f"{committed} is not committed: run python scripts/gen_protos.py"
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run python scripts/gen_protos.py"


def test_messages_round_trip_between_grpc_and_nats_payloads():
    from mephisto_sed.api.v1 import mephisto_pb2 as pb

    obs = pb.Observation(
        source_id="COSMOS-1", bands=[pb.BandFlux(filter="jwst.nircam.F444W", flux_mjy=0.1, error_mjy=0.01)]
    )
    assert not obs.HasField("redshift")  # a missing redshift is distinguishable from z = 0
    obs.redshift = 0.0
    req = pb.ExecuteRequest(job_id="j", step=3, observation=obs)
    again = pb.ExecuteRequest.FromString(req.SerializeToString())
    assert again == req and again.observation.HasField("redshift")
    services = {s.name for s in pb.DESCRIPTOR.services_by_name.values()}
    assert services == {"Executor", "Evaluator", "Proposer", "Distiller", "Gateway"}


def test_every_json_field_of_the_contract_holds_a_declared_record():
    """Every ``*_json`` string of the proto is listed with its record type, its JSON Schema is
    committed beside the proto, and what the platform writes into each validates as that record
    and writes back unchanged (the record is the one definition of the field's shape)."""
    import json

    from pydantic import TypeAdapter

    from mephisto_sed.agents.policy import ExpertPolicy
    from mephisto_sed.agents.records import dump
    from mephisto_sed.agents.search import Budget, search
    from mephisto_sed.api.v1 import mephisto_pb2 as pb
    from services.common import codec

    from .test_agents import BASE, BROAD_BANDS, _mock, _space

    found = {
        f"{m.name}.{f.name}"
        for m in pb.DESCRIPTOR.message_types_by_name.values()
        for f in m.fields
        if f.name.endswith("_json")
    }
    assert found == set(codec.JSON_FIELDS)
    committed = json.loads((ROOT / "protos" / "mephisto_sed" / "api" / "v1" / "records.schema.json").read_text())
    assert set(committed["fields"]) == found

    src, _ = _mock(BASE, BROAD_BANDS, seed=3)
    space = _space()
    res = search(src, space, ExpertPolicy(), Budget(max_models=20_000, max_steps=4))
    best = res.best
    payloads = {
        "SearchSpaceRef.space_json": codec.space_to_json(space),
        "Configuration.state_json": codec.configuration(pb.SearchSpaceRef(), space, best.state).state_json,
        "FitResult.best_model_json": codec.fit_to_proto(best.execution).best_model_json,
        "FitResult.detail_json": codec.fit_to_proto(best.execution).detail_json,
        "Evaluation.detail_json": codec.evaluation_to_proto(best.evaluation).detail_json,
        "Action.action_json": codec.dumps(dump(next(n.action for n in res.nodes if n.action is not None))),
        "SearchKnowledgeReply.outcomes_json": json.dumps({"bc03": {"metallicity": [0.02, 0.004]}}),
    }
    out = codec.result_to_proto("job", res)
    for field in ("row_json", "best_model_json", "trace_json", "best_fit_json", "best_state_json"):
        payloads[f"SourceResult.{field}"] = getattr(out, field)
    for name, text in payloads.items():
        adapter = TypeAdapter(codec.JSON_FIELDS[name])
        record = adapter.validate_json(text)
        again = json.loads(codec.dumps(adapter.dump_python(record)))
        assert again == json.loads(text) or _nan_equal(again, json.loads(text)), name
    with pytest.raises(ValueError, match="ladders"):
        codec.space_from_json('{"ladders": 3}')


def _nan_equal(a, b) -> bool:
    """Equal, where NaN equals NaN (results carry NaN for what a fit could not estimate)."""
    import math

    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_nan_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_nan_equal(x, y) for x, y in zip(a, b))
    return a == b
