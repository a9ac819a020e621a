"""Real Rubin alert packets (Avro, the official schemas of ``lsst-alert-packet``) to observations.

A packet comes in the Confluent wire format brokers use — magic byte 0, a 4-byte big-endian
schema id (Rubin's: major × 100 + minor, e.g. 703 for v7.3), then the schemaless Avro record — or
as an Avro object container file (the package's sample packets). Every schema version the package
ships is known (``fastavro`` decodes). A galaxy fit takes the per-band means of the ``diaObject``:
``<b>_scienceFluxMean`` (direct-image flux, v9+) where given, else ``<b>_psfFluxMean`` (difference
image; ``<b>PSFluxMean`` before v5), with their ``...Err``, in nJy, mapped to the LSST curves
``lsst.u`` ... ``lsst.y``. Rubin alerts carry no redshift.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache
from typing import Any

from mephisto_sed.api.v1 import mephisto_pb2 as pb

NJY_TO_MJY = 1e-6
RUBIN_BANDS = "ugrizy"
AVRO_CONTAINER = b"Obj\x01"
# (flux, error) field names of one band's mean in a diaObject, preferred first
FLUX_FIELDS = (
    ("{b}_scienceFluxMean", "{b}_scienceFluxMeanErr", "science"),
    ("{b}_psfFluxMean", "{b}_psfFluxMeanErr", "difference"),
    ("{b}PSFluxMean", "{b}PSFluxMeanErr", "difference"),
)


class BadRubinAlert(ValueError):
    """A packet that is not a Rubin alert of a known schema, or holds no usable photometry."""


@lru_cache(maxsize=1)
def schemas() -> dict[int, tuple[str, Any]]:
    """Schema id → (version, parsed schema) for every version ``lsst-alert-packet`` ships."""
    import fastavro
    from lsst.alert.packet import SchemaRegistry

    registry = SchemaRegistry.all_schemas_from_filesystem()
    out = {}
    for version in registry.known_versions:
        schema = registry.get_by_version(version)
        out[schema.get_schema_id()] = (version, fastavro.parse_schema(schema.definition))
    return out


def is_rubin_packet(data: bytes) -> bool:
    """Avro, not JSON: the Confluent magic byte or an Avro container file."""
    return data[:1] == b"\x00" or data.startswith(AVRO_CONTAINER)


def decode(data: bytes) -> tuple[str, dict[str, Any]]:
    """(schema version, record) of a packet; BadRubinAlert saying what is wrong."""
    import fastavro

    if data.startswith(AVRO_CONTAINER):
        try:
            reader = fastavro.reader(io.BytesIO(data))
            record = next(iter(reader))
        except (ValueError, EOFError, StopIteration, TypeError) as exc:
            raise BadRubinAlert(f"not a readable Avro container: {exc}") from None
        name = reader.writer_schema.get("name", "") if isinstance(reader.writer_schema, dict) else ""
        return str(name).removeprefix("lsst.v").removesuffix(".alert").replace("_", "."), _record(record)
    if len(data) < 6 or data[0] != 0:
        raise BadRubinAlert("not Confluent wire format (magic byte 0 + 4-byte schema id + Avro)")
    schema_id = int.from_bytes(data[1:5], "big")
    known = schemas()
    if schema_id not in known:
        raise BadRubinAlert(f"schema id {schema_id}: unknown (known: {', '.join(map(str, sorted(known)))})")
    version, schema = known[schema_id]
    try:
        body = io.BytesIO(data[5:])
        record = fastavro.schemaless_reader(body, schema, None)
    except (ValueError, EOFError, TypeError, IndexError, UnicodeDecodeError, OverflowError) as exc:
        raise BadRubinAlert(f"not a Rubin alert of schema {version} ({schema_id}): {type(exc).__name__}") from None
    if body.read(1):
        raise BadRubinAlert(f"bytes left after the schema {version} record")
    return version, _record(record)


def _record(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRubinAlert(f"an alert is a record, got {type(value).__name__}")
    return value


def _band(obj: dict[str, Any], b: str) -> tuple[float, float, str] | None:
    for flux_key, err_key, kind in FLUX_FIELDS:
        flux, err = obj.get(flux_key.format(b=b)), obj.get(err_key.format(b=b))
        if isinstance(flux, (int, float)) and isinstance(err, (int, float)) and math.isfinite(flux):
            return float(flux), float(err), kind
    return None


def observation(version: str, record: dict[str, Any]) -> tuple[str, pb.Observation]:
    """(alert id, observation without a redshift) of a decoded Rubin alert."""
    obj = record.get("diaObject")
    if not isinstance(obj, dict) or obj.get("diaObjectId") is None:
        raise BadRubinAlert("diaObject: missing (no object to fit)")
    alert_id = record.get("alertId", record.get("diaSourceId"))
    obs = pb.Observation(
        source_id=str(obj["diaObjectId"]), metadata={"alertId": str(alert_id), "rubin_schema": version}
    )
    kinds = set()
    for b in RUBIN_BANDS:
        found = _band(obj, b)
        if found is None:
            continue
        flux, err, kind = found
        kinds.add(kind)
        obs.bands.append(pb.BandFlux(filter=f"lsst.{b}", flux_mjy=flux * NJY_TO_MJY, error_mjy=err * NJY_TO_MJY))
    if not obs.bands:
        raise BadRubinAlert(f"diaObject {obj['diaObjectId']}: no band has a mean flux and error (schema {version})")
    obs.metadata["flux"] = "+".join(sorted(kinds))  # science (direct image) or difference-image means
    return str(alert_id), obs


def parse_rubin_alert(data: bytes) -> tuple[str, pb.Observation]:
    return observation(*decode(data))
