"""Real Rubin alert packets: the sample packets of every schema version ``lsst-alert-packet`` ships,
decoded from an Avro container and from the Confluent wire format brokers use; diaObject means
mapped to LSST filter curves in mJy; malformed packets and unknown schema ids refused with a reason
(the gateway dead-letters them with it)."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import fastavro
import lsst.alert.packet as lap
import pytest

from gateway.alerts import BadAlert, parse_alert
from gateway.rubin_alerts import BadRubinAlert, decode, observation, schemas

SCHEMA_ROOT = Path(lap.__file__).parent / "schema"
SAMPLES = sorted(SCHEMA_ROOT.glob("*/*/sample_data/*.avro"))


def _version(path: Path) -> str:
    return f"{path.parts[-4]}.{path.parts[-3]}"


def _wire(version: str, record: dict) -> bytes:
    """The record as a broker sends it: magic byte, schema id, schemaless Avro."""
    schema_id = next(i for i, (v, _) in schemas().items() if v == version)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schemas()[schema_id][1], record)
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()


def _with_photometry(version: str, record: dict) -> dict:
    """The sample record with per-band means filled in the schema's own field names."""
    rec = copy.deepcopy(record)
    obj = rec["diaObject"]
    flux = {"u": 900.0, "g": 1500.0, "r": 2100.0, "i": 2600.0, "z": 2900.0, "y": 3100.0}  # nJy
    for b, f in flux.items():
        for flux_key, err_key in (
            (f"{b}_scienceFluxMean", f"{b}_scienceFluxMeanErr"),
            (f"{b}_psfFluxMean", f"{b}_psfFluxMeanErr"),
            (f"{b}PSFluxMean", f"{b}PSFluxMeanErr"),
        ):
            if flux_key in obj:
                obj[flux_key], obj[err_key] = f, f / 20
                break
    return rec


def test_every_shipped_schema_version_is_known():
    versions = {_version(p) for p in SAMPLES}
    assert len(versions) >= 10 and versions <= {v for v, _ in schemas().values()}
    assert 703 in schemas() and schemas()[703][0] == "7.3"  # Rubin's id: major x 100 + minor


@pytest.mark.parametrize("path", SAMPLES, ids=_version)
def test_sample_packets_decode_from_a_container_and_the_wire(path):
    version = _version(path)
    data = path.read_bytes()
    v, record = decode(data)
    assert v == version and record["diaObject"]["diaObjectId"] == 281323062375219201
    # the samples' diaObject means are null: no photometry to fit, said plainly
    with pytest.raises(BadAlert, match="no band has a mean flux"):
        parse_alert(data)
    filled = _with_photometry(version, record)
    wire = _wire(version, filled)
    assert decode(wire)[1]["diaObject"]["diaObjectId"] == 281323062375219201
    alert_id, obs = parse_alert(wire)
    assert obs.source_id == "281323062375219201" and not obs.HasField("redshift")
    assert [b.filter for b in obs.bands] == [f"lsst.{b}" for b in "ugrizy"]
    assert obs.bands[2].flux_mjy == pytest.approx(2100e-6) and obs.bands[2].error_mjy == pytest.approx(105e-6)
    science = any(k.endswith("_scienceFluxMean") for k in record["diaObject"])
    assert obs.metadata["flux"] == ("science" if science else "difference")
    assert obs.metadata["rubin_schema"] == version and alert_id == obs.metadata["alertId"] != "None"


def test_malformed_packets_and_unknown_schemas_are_refused_with_a_reason():
    good = _wire("7.3", _sample("7.3"))
    cases = [
        (b"\x00\x00\x00\x03\xe7" + good[5:], "schema id 999: unknown"),
        (good[:40], "not a Rubin alert of schema 7.3"),
        (good + b"\x00\x01", "bytes left"),
        (b"\x00\x00", "not Confluent wire format"),
        (b"Obj\x01garbage", "not a readable Avro container"),
    ]
    for data, reason in cases:
        with pytest.raises(BadAlert, match=reason):
            parse_alert(data)
    with pytest.raises(BadRubinAlert, match="diaObject: missing"):
        observation("7.3", {"alertId": 1, "diaObject": None})


def _sample(version: str) -> dict:
    path = next(p for p in SAMPLES if _version(p) == version)
    return _with_photometry(version, decode(path.read_bytes())[1])
