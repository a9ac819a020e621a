"""The estimate a search returns: the posterior over a completed neighbourhood of its best basin.

A search's own ``bayes.*`` come from whichever models its path happened to run, so they depend on
the path and their errors are truncated. Before estimating, the search therefore fits a *box* of
the ladders around its best model (spanning also the best models of nodes within
``NEAR_DCHI2`` of it, other basins as good), and extends the box one slab at a time on any side
where the posterior still carries mass at the box's edge (``EDGE_MASS`` of the marginal's peak).
The slabs are disjoint, so their likelihood-weighted moments combine exactly into the posterior
over the box: the full grid's own estimate wherever no mass lies outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import param_key
from .execute import Execution
from .space import SearchSpace, State

__all__ = ["Box", "EDGE_MASS", "NEAR_DCHI2", "initial_box", "combine", "extensions"]

EDGE_MASS = 0.1  # posterior marginal at a box edge, relative to its peak, that extends the box there
NEAR_DCHI2 = 4.0  # nodes whose best χ² is this close to the best one's span the first box too
START_WIDTH = 1  # ladder steps either side of the best value in the first box


@dataclass
class Box:
    """A product of contiguous ladder ranges: ``ranges[(module, param)] = (lo, hi)`` (inclusive)."""

    modules: tuple[str, ...]
    ranges: dict[tuple[str, str], tuple[int, int]]

    def state(self, override: tuple[str, str, int] | None = None) -> State:
        """The box as a configuration, or with ``override`` = (module, param, index) its one-value slab."""
        choice = []
        for (m, p), (lo, hi) in self.ranges.items():
            idx = (override[2],) if override and (m, p) == override[:2] else tuple(range(lo, hi + 1))
            choice.append((m, p, idx))
        return State(self.modules, tuple(choice))

    def to_dict(self) -> dict[str, Any]:
        return {"modules": list(self.modules), "ranges": [[m, p, lo, hi] for (m, p), (lo, hi) in self.ranges.items()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Box:
        return cls(tuple(d["modules"]), {(m, p): (int(lo), int(hi)) for m, p, lo, hi in d["ranges"]})


def _size(space: SearchSpace, box: Box) -> int:
    return space.size(box.state())


def initial_box(space: SearchSpace, best: Any, near: list[Any], max_models: int) -> Box:
    """±``START_WIDTH`` around ``best``'s best model, widened to the best models of ``near`` nodes
    (same modules) while the box stays within ``max_models``; narrowed to fit it otherwise."""
    model = best.execution.best_model
    centre = {(m, p): space.nearest_index(m, p, model[m][p]) for m, p, _ in best.state.choice if p in model.get(m, {})}
    ranges: dict[tuple[str, str], tuple[int, int]] = {}
    for m, p, idx in best.state.choice:
        top = len(space.ladders[m][p]) - 1
        i = centre.get((m, p), idx[0])
        ranges[(m, p)] = (max(0, i - START_WIDTH), min(top, i + START_WIDTH))
    box = Box(best.state.modules, ranges)
    for node in near:
        other = node.execution.best_model
        wider = dict(box.ranges)
        for (m, p), (lo, hi) in box.ranges.items():
            if p in other.get(m, {}):
                j = space.nearest_index(m, p, other[m][p])
                wider[(m, p)] = (min(lo, j), max(hi, j))
        if _size(space, Box(box.modules, wider)) <= max_models:
            box = Box(box.modules, wider)
    while _size(space, box) > max_models:  # narrow the widest range towards the best value
        (m, p), (lo, hi) = max(box.ranges.items(), key=lambda kv: kv[1][1] - kv[1][0])
        if hi == lo:
            break
        i = centre.get((m, p), lo)
        box.ranges[(m, p)] = (lo + 1, hi) if i - lo >= hi - i else (lo, hi - 1)
    return box


def combine(executions: list[Execution]) -> tuple[dict[str, float], dict[str, dict[float, float]], float]:
    """The posterior over the union of disjoint executions: ``bayes.*`` means and errors, the Σ
    likelihood per parameter value, and the effective number of models' numerator (Σ L)."""
    finite = [ex for ex in executions if np.isfinite(ex.chi2) and ex.likelihood_sum > 0]
    if not finite:
        return {}, {}, 0.0
    ref = min(ex.chi2 for ex in finite)
    weights = [ex.likelihood_sum * np.exp(-(ex.chi2 - ref) / 2) for ex in finite]
    total = float(np.sum(weights))
    row: dict[str, float] = {}
    keys = [k for k in finite[0].row if k.startswith("bayes.") and not k.endswith("_err")]
    for key in keys:
        mean = m2 = 0.0
        for w, ex in zip(weights, finite):
            mu, sd = float(ex.row.get(key, np.nan)), float(ex.row.get(key + "_err", np.nan))
            if np.isfinite(mu) and np.isfinite(sd):
                mean += w * mu
                m2 += w * (sd**2 + mu**2)
        mean, m2 = mean / total, m2 / total
        row[key] = mean
        row[key + "_err"] = float(np.sqrt(max(m2 - mean**2, 0.0)))
    marginals: dict[str, dict[float, float]] = {}
    for w, ex in zip(weights, finite):
        scale = w / ex.likelihood_sum
        for key, pairs in ex.marginals.items():
            per_value = marginals.setdefault(key, {})
            for value, lik in pairs:
                per_value[float(value)] = per_value.get(float(value), 0.0) + scale * float(lik)
    return row, marginals, total


def extensions(
    space: SearchSpace, box: Box, marginals: dict[str, dict[float, float]]
) -> list[tuple[float, str, str, int]]:
    """Where the box should grow: (edge mass, module, param, new index), heaviest first, for every
    side whose edge value carries ≥ ``EDGE_MASS`` of its marginal's peak and has a ladder beyond."""
    out = []
    for (m, p), (lo, hi) in box.ranges.items():
        ladder = space.ladders[m][p]
        per_value = marginals.get(param_key(m, p), {})
        if not per_value or lo == hi and len(ladder) == 1:
            continue
        peak = max(per_value.values())
        if peak <= 0:
            continue
        for edge, new in ((lo, lo - 1), (hi, hi + 1)):
            if not 0 <= new < len(ladder):
                continue
            mass = _mass_at(per_value, float(ladder[edge])) / peak
            if mass >= EDGE_MASS:
                out.append((mass, m, p, new))
    return sorted(out, key=lambda t: -t[0])


def _mass_at(per_value: dict[float, float], value: float) -> float:
    for v, w in per_value.items():
        if np.isclose(v, value, rtol=1e-9, atol=1e-12):
            return w
    return 0.0


def grown(box: Box, module: str, param: str, new: int) -> Box:
    """The box with ``new`` added to ``module.param``'s range."""
    ranges = dict(box.ranges)
    lo, hi = ranges[(module, param)]
    ranges[(module, param)] = (min(lo, new), max(hi, new))
    return Box(box.modules, ranges)
