"""Alert packets to observations: real Rubin alerts (Avro, ``rubin_alerts.py``) and a JSON shape
of our own for pipelines that do not speak Avro, kept because it can carry a redshift (a Rubin
alert has none) and any CIGALE filter:

    {"alertId": 1234, "diaObject": {"diaObjectId": 99, "redshift": 0.84},
     "fluxes": [{"band": "r", "psfFlux": 1520.0, "psfFluxErr": 31.0}, ...],
     "fluxUnit": "nJy"}

``band`` is a Rubin band letter (→ ``lsst.<band>``) or use ``filter`` with any CIGALE filter name;
fluxes are in ``fluxUnit`` (nJy as in Rubin alerts by default; µJy, mJy and Jy accepted).
"""

from __future__ import annotations

import json
import math
from typing import Any

from mephisto_sed.api.v1 import mephisto_pb2 as pb

UNITS_TO_MJY = {"njy": 1e-6, "ujy": 1e-3, "µjy": 1e-3, "mjy": 1.0, "jy": 1e3}


class BadAlert(ValueError):
    pass


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadAlert(f"{where}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise BadAlert(f"{where}: not finite")
    return float(value)


def parse_alert(data: bytes) -> tuple[str, pb.Observation]:
    """(alert id, observation) or BadAlert naming the field; Avro packets are Rubin alerts."""
    from .rubin_alerts import BadRubinAlert, is_rubin_packet, parse_rubin_alert

    if is_rubin_packet(data):
        try:
            return parse_rubin_alert(data)
        except BadRubinAlert as exc:
            raise BadAlert(f"Rubin alert: {exc}") from None
    try:
        alert = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadAlert(f"not JSON: {exc}") from None
    if not isinstance(alert, dict):
        raise BadAlert("alert: expected a JSON object")
    if "alertId" not in alert:
        raise BadAlert("alertId: missing")
    alert_id = str(alert["alertId"])
    obj = alert.get("diaObject")
    if not isinstance(obj, dict) or "diaObjectId" not in obj:
        raise BadAlert("diaObject.diaObjectId: missing")
    unit = str(alert.get("fluxUnit", "nJy")).lower()
    if unit not in UNITS_TO_MJY:
        raise BadAlert(f"fluxUnit: {alert.get('fluxUnit')!r} is not one of nJy, uJy, mJy, Jy")
    scale = UNITS_TO_MJY[unit]
    obs = pb.Observation(source_id=str(obj["diaObjectId"]), metadata={"alertId": alert_id})
    z = obj.get("redshift")
    if z is not None:
        obs.redshift = _number(z, "diaObject.redshift")
    fluxes = alert.get("fluxes")
    if not isinstance(fluxes, list) or not fluxes:
        raise BadAlert("fluxes: expected a non-empty list")
    for j, f in enumerate(fluxes):
        if not isinstance(f, dict):
            raise BadAlert(f"fluxes[{j}]: expected an object")
        name = f.get("filter") or (f"lsst.{f['band']}" if isinstance(f.get("band"), str) else None)
        if not name:
            raise BadAlert(f"fluxes[{j}]: needs 'band' (Rubin letter) or 'filter' (CIGALE name)")
        obs.bands.append(
            pb.BandFlux(
                filter=str(name),
                flux_mjy=_number(f.get("psfFlux"), f"fluxes[{j}].psfFlux") * scale,
                error_mjy=_number(f.get("psfFluxErr"), f"fluxes[{j}].psfFluxErr") * scale,
                upper_limit=bool(f.get("upperLimit", False)),
            )
        )
    return alert_id, obs
