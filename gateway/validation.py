"""Validation of what the outside world sends: every error names the field it is about
(``sources[3].bands[2].error_mjy: must be > 0``). Nothing invalid reaches a worker."""

from __future__ import annotations

import math

import numpy as np

from mephisto_sed.agents.execute import Source
from mephisto_sed.agents.policy import initial_state
from mephisto_sed.agents.search import Budget
from mephisto_sed.agents.space import SearchSpace, default_space
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.config import ConfigError, parse_pcigale_ini
from mephisto_sed.filters import UnknownFilterError, get_filter
from mephisto_sed.observation_checks import band_problem, source_problem

MAX_ID_BYTES = 200  # file names hold ids (made safe): keep them well under the 255-byte limit
MAX_METADATA = 32
MAX_BUDGET_MODELS = 20_000_000


class Invalid(ValueError):
    """A request field that cannot be accepted; the message starts with the field's path."""


def known_filter(name: str, where: str) -> None:
    try:
        get_filter(name)
    except (UnknownFilterError, ValueError) as exc:
        raise Invalid(f"{where}: {exc}") from None


def check_observation(obs: pb.Observation, where: str = "source") -> None:
    """One observation, by the checks catalogues and alerts get too (observation_checks)."""
    if not obs.source_id.strip():
        raise Invalid(f"{where}.source_id: empty")
    if len(obs.source_id.encode("utf-8")) > MAX_ID_BYTES:
        raise Invalid(f"{where}.source_id: longer than {MAX_ID_BYTES} bytes in UTF-8")
    if not obs.source_id.isprintable():
        raise Invalid(f"{where}.source_id: holds control characters")
    seen: set[str] = set()
    for j, b in enumerate(obs.bands):
        w = f"{where}.bands[{j}]"
        if b.filter in seen:
            raise Invalid(f"{w}.filter: {b.filter!r} given twice")
        seen.add(b.filter)
        known_filter(b.filter, f"{w}.filter")
        problem = band_problem(b.flux_mjy, b.error_mjy)
        if problem is not None:
            raise Invalid(f"{w}.{'flux_mjy' if problem[0] == 'flux' else 'error_mjy'}: {problem[1]}")
    # no redshift: the proposer finds a photometric one; a given one must be a redshift
    given = obs.HasField("redshift")
    z = obs.redshift if given else math.nan
    problem = source_problem(z, [b.flux_mjy for b in obs.bands], [b.upper_limit for b in obs.bands], photoz=not given)
    if problem is not None:
        raise Invalid(f"{where}.{problem[0]}: {problem[1]}")
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
    first: dict[str, int] = {}
    for i, s in enumerate(req.sources):
        check_observation(s, f"sources[{i}]")
        if s.source_id in first:  # results are written per id: one would overwrite the other
            raise Invalid(f"sources[{i}].source_id: {s.source_id[:80]!r} repeats sources[{first[s.source_id]}]")
        first[s.source_id] = i
    check_budget(req.budget)
    space = space_for(req)
    check_first_look(req, space)
    return space


def check_first_look(req: pb.SubmitBatchRequest, space: SearchSpace) -> None:
    """A budget below a source's coarsest first look would fail the job once it starts: refuse it
    now. (The first look depends on the redshift: no population older than the Universe.)"""
    max_models = req.budget.max_models or Budget().max_models
    for i, obs in enumerate(req.sources):
        source = Source(obs.source_id, float(obs.redshift), list(space.bands), *_empty(len(space.bands)))
        size = space.size(initial_state(space, source, max_models))
        if size > max_models:
            raise Invalid(
                f"budget.max_models: {max_models:,} is below the first look of sources[{i}] ({size:,} models)"
            )


def _empty(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Photometry does not place the first look: only the redshift and the space do."""
    return np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=bool)
