"""Validation of what the outside world sends: every error names the field it is about
(``sources[3].bands[2].error_mjy: must be > 0``). Nothing invalid reaches a worker."""

from __future__ import annotations

import math

from mephisto_sed.agents.space import SearchSpace, default_space
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.config import ConfigError, parse_pcigale_ini
from mephisto_sed.filters import get_filter

MAX_REDSHIFT = 20.0
MIN_BANDS = 3  # a reduced chi-square needs more bands than free parameters (the scale)
MAX_ID = 200
MAX_METADATA = 32
MAX_BUDGET_MODELS = 20_000_000


class Invalid(ValueError):
    """A request field that cannot be accepted; the message starts with the field's path."""


def known_filter(name: str, where: str) -> None:
    try:
        get_filter(name)
    except Exception as exc:
        raise Invalid(f"{where}: {exc}") from None


def check_observation(obs: pb.Observation, where: str = "source") -> None:
    if not obs.source_id.strip():
        raise Invalid(f"{where}.source_id: empty")
    if len(obs.source_id) > MAX_ID:
        raise Invalid(f"{where}.source_id: longer than {MAX_ID} characters")
    if not obs.HasField("redshift"):
        raise Invalid(f"{where}.redshift: missing (the agents need a redshift)")
    if not math.isfinite(obs.redshift) or not 0.0 <= obs.redshift <= MAX_REDSHIFT:
        raise Invalid(f"{where}.redshift: {obs.redshift} is not in [0, {MAX_REDSHIFT:g}]")
    seen: set[str] = set()
    detections = 0
    for j, b in enumerate(obs.bands):
        w = f"{where}.bands[{j}]"
        if b.filter in seen:
            raise Invalid(f"{w}.filter: {b.filter!r} given twice")
        seen.add(b.filter)
        known_filter(b.filter, f"{w}.filter")
        if not math.isfinite(b.flux_mjy):
            raise Invalid(f"{w}.flux_mjy: {b.flux_mjy} is not finite (leave a missing band out)")
        if not math.isfinite(b.error_mjy) or b.error_mjy <= 0:
            raise Invalid(f"{w}.error_mjy: {b.error_mjy} must be finite and > 0")
        detections += not b.upper_limit
    if detections < MIN_BANDS:
        raise Invalid(f"{where}.bands: {detections} detections, at least {MIN_BANDS} needed")
    if len(obs.metadata) > MAX_METADATA:
        raise Invalid(f"{where}.metadata: more than {MAX_METADATA} entries")
    for k, v in obs.metadata.items():
        if len(k) > 100 or len(v) > 1000:
            raise Invalid(f"{where}.metadata[{k[:40]!r}]: key over 100 or value over 1000 characters")


def check_budget(b: pb.Budget) -> None:
    if b.max_models > MAX_BUDGET_MODELS:
        raise Invalid(f"budget.max_models: {b.max_models:,} over the limit of {MAX_BUDGET_MODELS:,}")
    if b.max_steps < 0 or b.max_steps > 1000:
        raise Invalid(f"budget.max_steps: {b.max_steps} not in [0, 1000]")
    if not math.isfinite(b.max_seconds) or b.max_seconds < 0:
        raise Invalid(f"budget.max_seconds: {b.max_seconds} must be finite and >= 0")


def space_for(req: pb.SubmitBatchRequest) -> SearchSpace:
    """The batch's search space: its pcigale.ini (or the built-in one) over its bands."""
    if req.pcigale_ini:
        try:
            space = SearchSpace.from_config(parse_pcigale_ini(req.pcigale_ini, name="pcigale_ini"))
        except ConfigError as exc:
            raise Invalid(str(exc)) from None
    else:
        space = default_space()
    if req.bands:
        for j, name in enumerate(req.bands):
            known_filter(name, f"bands[{j}]")
        bands = list(dict.fromkeys(req.bands))
    else:
        bands = list(dict.fromkeys(b.filter for s in req.sources for b in s.bands))
    for i, s in enumerate(req.sources):
        for j, b in enumerate(s.bands):
            if b.filter not in bands:
                raise Invalid(f"sources[{i}].bands[{j}].filter: {b.filter!r} is not in the request's bands")
    space.bands = bands
    return space


def check_submit(req: pb.SubmitBatchRequest, max_sources: int) -> SearchSpace:
    if not req.sources:
        raise Invalid("sources: empty")
    if len(req.sources) > max_sources:
        raise Invalid(f"sources: {len(req.sources)} sources exceed the limit of {max_sources} per request")
    if len(req.idempotency_key) > 200:
        raise Invalid("idempotency_key: longer than 200 characters")
    for i, s in enumerate(req.sources):
        check_observation(s, f"sources[{i}]")
    check_budget(req.budget)
    return space_for(req)
