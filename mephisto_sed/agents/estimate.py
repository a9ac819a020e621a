"""The estimate a search returns: the posterior over a completed neighbourhood of its best basin.

A search's own ``bayes.*`` come from whichever models its path happened to run, so they depend on
the path and their errors are truncated. Before estimating, the search therefore fits a *box* of
the ladders around its best model, spanning every value where any of its steps saw the
likelihood reach ``EXTENT_MASS`` of its peak; a box too large for its model budget keeps every
other value of the parameters where that harms least: a smooth likelihood (each kept value stands
for its neighbour) or a mass that does not move across the values (``Execution.log_mass_by_value``);
only a parameter both flat and mass-free keeps its best value alone. The box then grows one slab
at a time on any side where the posterior still carries mass at its edge (``EDGE_MASS`` of the
marginal's peak), up to a ladder's last value. The slabs are
disjoint, so their likelihood-weighted moments combine exactly into the posterior over the box:
the full grid's own estimate wherever no mass lies outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model_grid import param_key
from .execute import Execution
from .space import SearchSpace, State

__all__ = ["Box", "EDGE_MASS", "EXTENT_MASS", "initial_box", "combine", "extensions", "grown", "profile"]

EDGE_MASS = 0.1  # posterior marginal at a box edge, relative to its peak, that extends the box there
EXTENT_MASS = 0.01  # likelihood, relative to the peak, that the search saw at a value the box must span
START_WIDTH = 1  # ladder steps either side of the best value in the first box
UNSEEN_ROUGHNESS = 3.0  # a parameter the search never varied: thinned after the smooth ones
FLAT_ROUGHNESS = 0.1  # neighbours within 10 % in likelihood: a flat parameter, thinned down to one value
MASS_SPREAD = 0.02  # dex of log M* across a parameter's values below which the mass does not depend on it
UNSEEN_SPREAD = 1.0  # a parameter no step saw the mass vary with: assumed to matter to the mass


@dataclass
class Box:
    """A product of ladder index lists: ``indices[(module, param)]`` (sorted; a thinned parameter
    keeps every other value of its range, each standing for its neighbour)."""

    modules: tuple[str, ...]
    indices: dict[tuple[str, str], tuple[int, ...]]

    def state(self, override: tuple[str, str, int] | None = None) -> State:
        """The box as a configuration, or with ``override`` = (module, param, index) its one-value slab."""
        choice = []
        for (m, p), idx in self.indices.items():
            choice.append((m, p, (override[2],) if override and (m, p) == override[:2] else idx))
        return State(self.modules, tuple(choice))

    def step(self, module: str, param: str) -> int:
        """The stride of a parameter's values (1; 2, 4... where thinned): how far the next value
        beyond an edge lies."""
        idx = self.indices[(module, param)]
        return int(min(np.diff(idx))) if len(idx) > 1 else 1

    def to_dict(self) -> dict[str, Any]:
        return {"modules": list(self.modules), "indices": [[m, p, list(idx)] for (m, p), idx in self.indices.items()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Box:
        return cls(tuple(d["modules"]), {(m, p): tuple(int(i) for i in idx) for m, p, idx in d["indices"]})


def _size(space: SearchSpace, box: Box) -> int:
    return space.size(box.state())


def profile(executions: list[Execution]) -> dict[str, dict[float, float]]:
    """Per parameter value, the largest likelihood any execution saw there (on one χ² scale).
    Executions overlap, so this is a profile of where the posterior has mass, not the posterior."""
    finite = [ex for ex in executions if np.isfinite(ex.chi2) and ex.likelihood_sum > 0]
    if not finite:
        return {}
    ref = min(ex.chi2 for ex in finite)
    out: dict[str, dict[float, float]] = {}
    for ex in finite:
        w = np.exp(-(ex.chi2 - ref) / 2) / ex.likelihood_sum
        for key, pairs in ex.marginals.items():
            per_value = out.setdefault(key, {})
            for value, lik in pairs:
                per_value[float(value)] = max(per_value.get(float(value), 0.0), w * float(lik))
    return out


def initial_box(space: SearchSpace, best: Any, searched: list[Any], max_models: int) -> Box:
    """Every ladder value where the search saw ≥ ``EXTENT_MASS`` of the peak likelihood (and one
    beyond), around ``best``'s best model; where that exceeds ``max_models``, thinned where it
    harms least (``_thin``), and as a last resort the longest ranges narrowed towards the best value."""
    model = best.execution.best_model
    same = [n.execution for n in searched if n.state.modules == best.state.modules]
    seen = profile(same)
    indices: dict[tuple[str, str], tuple[int, ...]] = {}
    centre: dict[tuple[str, str], int] = {}
    for m, p, idx in best.state.choice:
        ladder = space.ladders[m][p]
        c = space.nearest_index(m, p, model[m][p]) if p in model.get(m, {}) else idx[0]
        lo, hi = c - START_WIDTH, c + START_WIDTH
        per_value = seen.get(param_key(m, p), {})
        peak = max(per_value.values(), default=0.0)
        for value, lik in per_value.items():
            if peak > 0 and lik >= EXTENT_MASS * peak:
                j = space.nearest_index(m, p, value)
                lo, hi = min(lo, j - 1), max(hi, j + 1)
        lo, hi = max(lo, 0), min(hi, len(ladder) - 1)
        indices[(m, p)], centre[(m, p)] = tuple(range(lo, hi + 1)), c
        if space.is_held(best.state, m, p):  # a value only a rule tries: not part of the posterior's prior
            indices[(m, p)] = idx
    box = Box(best.state.modules, indices)
    while _size(space, box) > max_models:
        if _thin(space, box, centre, same):
            continue
        narrowable = [(k, v) for k, v in box.indices.items() if len(v) > 1]
        if not narrowable:
            break
        (m, p), idx = max(narrowable, key=lambda kv: (len(kv[1]), kv[0]))  # narrow towards the best value
        c = centre[(m, p)]
        box.indices[(m, p)] = idx[1:] if c - idx[0] >= idx[-1] - c else idx[:-1]
    return box


def _thin(space: SearchSpace, box: Box, centre: dict[tuple[str, str], int], same: list[Execution]) -> bool:
    """Thin one parameter of ``box`` where it harms least: every other value, counted from the best
    one (False if none may be). A flat one (the data do not constrain it: logU from broad bands,
    say) or one the mass does not depend on may be thinned again; down to its best value alone only
    one that is both: a flat likelihood over values of different mass (tau_main of a young galaxy) is
    exactly where holding one value would bias the mass."""
    thinnable = []
    for (m, p), idx in box.indices.items():
        rough, spread = _roughness(space, box, same, m, p), _mass_spread(space, box, same, m, p)
        c, stride = centre[(m, p)], 2 * box.step(m, p)
        kept = tuple(i for i in idx if (i - c) % stride == 0)
        flat = rough <= FLAT_ROUGHNESS
        again = len(idx) >= 2 and (flat or spread <= MASS_SPREAD)
        if len(kept) == len(idx) or not ((len(idx) >= 3 and box.step(m, p) == 1) or again):
            continue
        if len(kept) == 1 and not (flat and spread <= MASS_SPREAD):
            continue
        # the harm: kept values stand for their neighbours, so it is small where the likelihood is
        # smooth or the mass does not change across the values
        thinnable.append((spread * rough, rough, (m, p), kept))
    if not thinnable:
        return False
    _, _, (m, p), kept = min(thinnable)
    box.indices[(m, p)] = kept
    return True


TIED_CHI2 = 1e-9  # relative: χ² closer than this belong to the same best model (the search's too)


def tied(chi2: float, least: float) -> bool:
    """Whether ``chi2`` ties with ``least``: within ``TIED_CHI2`` of it (relative). Steps holding the
    same best model have χ² equal but for the last bits, which differ between machines and
    libraries, so those bits must never decide between them."""
    return chi2 <= least + TIED_CHI2 * max(abs(least), 1.0)


def _best_varying(same: list[Execution], key: str, field: str) -> Execution | None:
    """The best-fitting execution that ran ≥ 2 values of ``key`` (``field``: which per-value record).
    Several steps often contain the same best model (a scan and the zoom around it): their χ² are
    equal but for the last bits, which differ between machines and libraries, so of those the one
    that saw the most values of ``key`` (then the most models, then the first) is taken."""
    varied = [ex for ex in same if len(getattr(ex, field).get(key, [])) >= 2 and np.isfinite(ex.chi2)]
    if not varied:
        return None
    least = min(ex.chi2 for ex in varied)
    best = [ex for ex in varied if tied(ex.chi2, least)]
    return max(best, key=lambda ex: (len(getattr(ex, field)[key]), ex.n_models))


def _inside(space: SearchSpace, box: Box, m: str, p: str) -> list[float]:
    ladder = space.ladders[m][p]
    return [float(ladder[i]) for i in box.indices[(m, p)]]


def _roughness(space: SearchSpace, box: Box, same: list[Execution], m: str, p: str) -> float:
    """The largest likelihood ratio (ln) between neighbouring values of the box, read off the best
    step that varied the parameter (within one step's product grid, the marginal at each value
    integrates the same other values): small where the posterior is smooth and can be thinned."""
    ex = _best_varying(same, param_key(m, p), "marginals")
    if ex is None:
        return UNSEEN_ROUGHNESS
    per_value = {float(v): float(w) for v, w in ex.marginals[param_key(m, p)]}
    peak = max(per_value.values(), default=0.0)
    if peak <= 0:
        return UNSEEN_ROUGHNESS
    inside = _inside(space, box, m, p)
    levels = [np.log(max(w / peak, 1e-3)) for v, w in sorted(per_value.items()) if _in(v, inside)]
    return float(np.max(np.abs(np.diff(levels)))) if len(levels) > 1 else UNSEEN_ROUGHNESS


def _mass_spread(space: SearchSpace, box: Box, same: list[Execution], m: str, p: str) -> float:
    """How much log M* depends on the parameter (dex): the range of the mean log M* over its values
    in the box that carry ≥ ``EDGE_MASS`` of the marginal's peak, read off the best step that varied
    it. Not weighted by the likelihood: a sharp posterior (E(B−V) peaked on one value) hides how
    much the mass moves between the values a thinned box would keep."""
    key = param_key(m, p)
    ex = _best_varying(same, key, "log_mass_by_value")
    if ex is None:
        return UNSEEN_SPREAD
    weight = {float(v): float(w) for v, w in ex.marginals.get(key, [])}
    peak = max(weight.values(), default=0.0)
    inside = _inside(space, box, m, p)
    masses = [
        lm
        for v, lm in ex.log_mass_by_value[key]
        if _in(float(v), inside) and weight.get(float(v), 0.0) >= EDGE_MASS * peak
    ]
    if len(masses) < 2:  # one value carries the step's likelihood: how the mass moves is not seen
        return UNSEEN_SPREAD
    return float(max(masses) - min(masses))


def combine(executions: list[Execution]) -> tuple[dict[str, float], dict[str, dict[float, float]]]:
    """The posterior over the union of disjoint executions: ``bayes.*`` means and errors, and the
    Σ likelihood per parameter value."""
    finite = [ex for ex in executions if np.isfinite(ex.chi2) and ex.likelihood_sum > 0]
    if not finite:
        return {}, {}
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
    return row, marginals


def extensions(
    space: SearchSpace, box: Box, marginals: dict[str, dict[float, float]]
) -> list[tuple[float, str, str, int]]:
    """Where the box should grow: (edge mass, module, param, new index), heaviest first, for every
    side whose edge value carries ≥ ``EDGE_MASS`` of its marginal's peak and has a ladder beyond."""
    out = []
    for (m, p), idx in box.indices.items():
        ladder = space.ladders[m][p]
        if len(idx) == 1:
            continue  # one value: held, or thinned as flat — what lies beyond carries the same likelihood
        per_value = marginals.get(param_key(m, p), {})
        peak = max(per_value.values(), default=0.0)
        if peak <= 0:
            continue
        step = box.step(m, p)
        # a thinned range steps by its stride, but never past the ladder's end: the last value
        # before the end must still be reachable (logU = -4 beside a box thinned from -3.8)
        below, above = max(idx[0] - step, 0), min(idx[-1] + step, len(ladder) - 1)
        for edge, new in ((idx[0], below), (idx[-1], above)):
            if new == edge:
                continue
            mass = _mass_at(per_value, float(ladder[edge])) / peak
            if mass >= EDGE_MASS:
                out.append((mass, m, p, new))
    return sorted(out, key=lambda t: -t[0])


def _same(a: float, b: float) -> bool:  # one ladder value, read back through JSON and float sums
    return bool(np.isclose(a, b, rtol=1e-9, atol=1e-12))


def _in(value: float, values: list[float]) -> bool:
    return any(_same(value, v) for v in values)


def _mass_at(per_value: dict[float, float], value: float) -> float:
    return next((w for v, w in per_value.items() if _same(v, value)), 0.0)


def grown(box: Box, module: str, param: str, new: int) -> Box:
    """The box with ``new`` added to ``module.param``'s values."""
    indices = dict(box.indices)
    indices[(module, param)] = tuple(sorted({*indices[(module, param)], new}))
    return Box(box.modules, indices)
