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
