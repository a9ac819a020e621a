"""Proposers. The built-in expert policy maps evaluation patterns to actions, the way an
astronomer reads a bad fit, and ranks them with retrieved knowledge. LLM proposers implement
the same ``Policy`` interface (``propose`` returns ranked, not yet validated, actions)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..photometry import age_of_universe_myr
from ..sed_modules import ATTENUATION_MODELS, SFH_MODELS
from .actions import Action
from .evaluate import Evaluation
from .execute import Source
from .space import SWAPS, SearchSpace, State

__all__ = [
    "Policy",
    "ExpertPolicy",
    "ProposalContext",
    "KnowledgeHint",
    "Outcomes",
    "initial_state",
    "action_key",
]


VALUE_MODELS = 10_000  # knowledge values an action by its χ² gain per this many models
EVIDENCE_PRIOR = 3.0  # tries (similarity-weighted) at which the learned value counts half


def _size(ctx: ProposalContext, action: Action) -> float:
    """Models the action would fit from the current node (for rules that did not record it)."""
    from .actions import ActionError, apply_action

    try:
        return float(ctx.space.size(apply_action(ctx.space, ctx.state, action, ctx.evaluation.best)))
    except (ActionError, KeyError, ValueError, TypeError):
        return float(VALUE_MODELS)


def action_key(action: Action | dict[str, Any]) -> str:
    """What an action does, independent of the source: e.g. ``widen:dustatt_modified_starburst.E_BV_lines:up``."""
    d = action.to_dict() if isinstance(action, Action) else action
    target = ".".join(x for x in (d.get("module"), d.get("param")) if x)
    key = ":".join(x for x in (d["type"], target, d.get("direction") or d.get("to") or "") if x)
    if d.get("values"):
        key += "=" + ",".join(f"{v:g}" for v in d["values"])
    if d.get("couple"):
        key += "+" + ",".join(sorted(d["couple"]))
    if d.get("around"):  # a zoom around another centre is its own action
        key += "@" + ",".join(f"{k}={v:g}" for k, v in sorted(dict(d["around"]).items()))
    return key


Outcomes = dict[str, dict[str, list[float]]]  # module -> parameter -> best values of other galaxies


@dataclass
class KnowledgeHint:
    """A retrieved rule: similarity to the current situation and its evidence."""

    action: dict[str, Any]
    similarity: float
    tried: int
    helped: int
    mean_gain: float
    text: str = ""
    mean_models: float = 0.0  # models the action spent when it was tried (0: not recorded)

    @property
    def success_rate(self) -> float:
        return (self.helped + 1) / (self.tried + 2)  # Laplace: unseen evidence counts as a coin flip


@dataclass
class ProposalContext:
    space: SearchSpace
    source: Source
    state: State
    evaluation: Evaluation
    history: list[dict[str, Any]] = field(default_factory=list)  # previous steps (action, gain)
    knowledge: list[KnowledgeHint] = field(default_factory=list)
    budget_left: int = 0
    alternatives: list[tuple[float, dict[str, dict[str, Any]]]] = field(default_factory=list)
    tokens_left: int | None = None  # LLM tokens left in the budget (None: no limit)
    seconds_left: float | None = None  # wall time left in the budget: an LLM call ends by then


class Policy(Protocol):
    name: str

    def initial(
        self, space: SearchSpace, source: Source, max_models: int | None = None, outcomes: Outcomes | None = None
    ) -> State: ...

    def propose(self, ctx: ProposalContext) -> list[Action]: ...


def _spread(n: int, k: int) -> list[int]:
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, min(n, k))})


def _nearest(ladder: list[Any], value: float) -> int:
    return int(np.argmin(np.abs(np.asarray(ladder, dtype=float) - value)))


# Values per parameter in the first look: a coarse but complete grid, every dimension spanned end
# to end (multi-modal χ² surfaces — burst-dominated versus old, weak versus strong nebular lines —
# are found here, then refined). SFH parameters are the engine's cheap axis.
FIRST_LOOK = {
    "tau_main": 5,
    "age_main": 4,
    "age": 4,
    "age_burst": 3,
    "burst_age": 3,
    "tau_burst": 1,
    "metallicity": 3,
    "logU": 6,
    "zgas": 2,
    "E_BV_lines": 6,
    "E_BVs_young": 6,
    "fracAGN": 3,
    "EBV": 2,
}


# Coarser looks, tried in turn while the first look would take more than a quarter of the budget.
_COARSER = (
    {"logU": 4, "E_BV_lines": 5, "E_BVs_young": 5, "age_burst": 2, "burst_age": 2},
    {"logU": 3, "E_BV_lines": 4, "E_BVs_young": 4, "tau_main": 4, "age_main": 3, "age": 3, "zgas": 1},
    {
        "logU": 2,
        "E_BV_lines": 3,
        "E_BVs_young": 3,
        "tau_main": 3,
        "metallicity": 2,
        "age_burst": 1,
        "burst_age": 1,
        "f_burst": 2,
    },
)


# Knowledge of other galaxies' best fits places the first look's values: below this many best
# fits of similar galaxies a parameter keeps the even spread.
MIN_OUTCOMES = 5
PSEUDO_FRACTION = 0.05  # every allowed value counts as this fraction of the galaxies (keeps rare values reachable)


def initial_state(
    space: SearchSpace, source: Source, max_models: int | None = None, outcomes: Outcomes | None = None
) -> State:
    """The first look: a coarse grid spanning every base parameter (a fraction of a per cent of a
    typical expert grid), made coarser until it fits a quarter of ``max_models``. With
    ``outcomes`` (the best values similar galaxies ended with) each parameter's values are
    placed where those galaxies' answers lie instead of evenly: as many values, a closer start."""
    counts = dict(FIRST_LOOK, f_burst=4)
    state = _first_look(space, source, counts, outcomes)
    for coarser in _COARSER:
        if max_models is None or space.size(state) <= max_models // 4:
            break
        counts.update(coarser)
        state = _first_look(space, source, counts, outcomes)
    return state


def _covering(
    ladder: list[Any], allowed: list[int], values: list[float], k: int, keep: list[int] | tuple[int, ...] = ()
) -> list[int]:
    """``k`` ladder positions among ``allowed`` placed where ``values`` lie: weighted 1-D k-medians
    in ladder steps, solved exactly. Every allowed position also counts as ``PSEUDO_FRACTION`` of
    the values, so a well-populated stretch of the ladder far from the others keeps a value of its
    own however many galaxies are known. The positions in ``keep`` (at most ``k``, among
    ``allowed``) are always chosen; the others go where the values lie.

    Dynamic programming over consecutive chosen positions: O(k n²) for n allowed positions
    (enumerating the C(n, k) subsets froze the proposer on a 120-value ladder). Of equally good
    choices it returns the lexicographically first, as that enumeration did."""
    n = len(allowed)
    if k >= n:
        return list(allowed)
    weight = np.full(n, PSEUDO_FRACTION * len(values))
    for v in values:
        weight[int(np.argmin([abs(float(ladder[i]) - float(v)) for i in allowed]))] += 1.0
    pos = np.asarray(allowed, dtype=float)
    dist = np.abs(pos[:, None] - pos[None, :])  # dist[l, c]: from position l to a chosen c
    wd = weight[:, None] * dist
    kept = sorted(allowed.index(i) for i in keep)
    left = np.array([wd[:c, c].sum() for c in range(n)])  # positions below the first chosen one
    right = np.array([wd[c + 1 :, c].sum() for c in range(n)])  # above the last chosen one
    if kept:  # a kept position below the first chosen one or above the last is not chosen
        left[np.arange(n) > kept[0]] = np.inf
        right[np.arange(n) < kept[-1]] = np.inf
    between = np.full((n, n), np.inf)  # positions strictly between chosen a < b go to the nearer
    for a in range(n):
        for b in range(a + 1, n):
            if not any(a < q < b for q in kept):  # nor may one lie strictly between two chosen
                between[a, b] = float(np.minimum(wd[a + 1 : b, a], wd[a + 1 : b, b]).sum())
    # rest[m][c]: least cost of the positions above c when c is chosen and m more follow it
    rest = [right]
    for _ in range(1, k):
        rest.append(np.min(between + rest[-1][None, :], axis=1))
    chosen = [_first_within(left + rest[k - 1])]
    for m in range(k - 2, -1, -1):
        a = chosen[-1]
        chosen.append(_first_within(between[a] + rest[m], rest[m + 1][a]))
    return [allowed[i] for i in chosen]


def _first_within(cost: np.ndarray, best: float | None = None) -> int:
    """The first index whose cost is within 1e-12 of the least (or of ``best``)."""
    target = float(np.min(cost)) if best is None else best
    return int(np.flatnonzero(cost <= target + 1e-12)[0])


def _first_look(space: SearchSpace, source: Source, counts: dict[str, int], outcomes: Outcomes | None = None) -> State:
    t_univ = age_of_universe_myr(source.redshift)
    bursts = (0.0, 0.1, 0.5, 0.9)[: counts["f_burst"]] if counts["f_burst"] < 4 else (0.0, 0.1, 0.5, 0.9)
    choice: dict[str, dict[str, list[int]]] = {}
    for m in space.base:
        choice[m] = {}
        for p, ladder in space.ladders[m].items():
            n = len(ladder)
            allowed = list(range(n))
            if p in ("age_main", "age"):  # no population older than the Universe at z
                allowed = [i for i, v in enumerate(ladder) if v <= t_univ] or [0]
            learned = (outcomes or {}).get(m, {}).get(p, [])
            if p in space.held.get(m, {}):
                idx = [space.held[m][p]]
            elif p in ("age_main", "age"):
                idx = [allowed[i] for i in _spread(len(allowed), counts[p])]
            elif p == "f_burst":
                idx = sorted({_nearest(ladder, v) for v in bursts})
            elif p == "tau_burst":
                idx = [n // 2]
            elif p in counts:
                idx = _spread(n, counts[p])
            else:
                idx = [_nearest(ladder, float(np.median(ladder)))] if n > 2 else [0]
            if p not in space.held.get(m, {}) and n > 1 and len(learned) >= MIN_OUTCOMES:
                if p in counts or p == "tau_burst":
                    keep = _not_ruled_out(ladder, allowed, idx, learned) if len(idx) > 1 else []
                    idx = _covering(ladder, allowed, learned, counts.get(p, 1), keep)
            choice[m][p] = idx
    return space.state(space.base, choice)


def _not_ruled_out(ladder: list[Any], allowed: list[int], even: list[int], learned: list[float]) -> list[int]:
    """The even look's values that knowledge has no evidence against: those in whose stretch of
    the ladder (the allowed positions nearer to it than to any other even value; a tie counts for
    both) at least one similar galaxy ended. A value is dropped only when every one of at least
    ``MIN_OUTCOMES`` such galaxies ended elsewhere (issue 17: a learned look never drops what the
    even look would try without evidence)."""
    values = np.asarray([float(ladder[i]) for i in allowed])
    ended = {int(np.argmin(np.abs(values - float(v)))) for v in learned}  # allowed positions, in steps
    even_at = [allowed.index(e) for e in even]
    keep = []
    for e, at in zip(even, even_at):
        if any(abs(q - at) <= min(abs(q - o) for o in even_at) for q in ended):
            keep.append(e)
    return keep


@dataclass
class ExpertPolicy:
    """Rules from evaluation patterns to actions, ranked by their priority plus what knowledge
    learned they gain per model; knowledge of where similar galaxies ended places the first look."""

    name: str = "expert"
    knowledge_weight: float = 1.0

    def initial(
        self, space: SearchSpace, source: Source, max_models: int | None = None, outcomes: Outcomes | None = None
    ) -> State:
        return initial_state(space, source, max_models, outcomes)

    def propose(self, ctx: ProposalContext) -> list[Action]:
        names = _Names.of(ctx.state)
        cands = [c for rule in EXPERT_RULES for c in rule(ctx, names)]
        # knowledge: rules learned on other galaxies re-rank these and may add their own actions
        return self._rank(cands, ctx)

    def _rank(self, cands: list[tuple[float, Action]], ctx: ProposalContext) -> list[Action]:
        """Expert priority plus what knowledge says an action is worth: its χ² gain per 10,000
        models on similar galaxies (so a cheap step that often helps a little goes before a costly
        one that helps as much), trusted in proportion to the evidence."""
        from .actions import parse_action

        # key -> [weight, weight × gain, weight of rules that recorded their cost, that × models]
        evidence: dict[str, list[float]] = {}
        extra: dict[str, Action] = {}
        for hint in ctx.knowledge:
            key = action_key(hint.action)
            w = max(hint.similarity, 0.0) * hint.tried
            e = evidence.setdefault(key, [0.0, 0.0, 0.0, 0.0])
            e[0] += w
            e[1] += w * hint.mean_gain
            if hint.mean_models > 0:
                e[2] += w
                e[3] += w * hint.mean_models
            if key not in extra and hint.success_rate > 0.6 and hint.similarity > 0.8:
                try:
                    a = parse_action({k: v for k, v in hint.action.items() if k != "rule"})
                except ValueError:
                    continue
                extra[key] = Action(**{**a.__dict__, "rationale": f"knowledge: {hint.text}"[:500], "rule": "knowledge"})
        keys = {action_key(a) for _, a in cands}
        for key, a in extra.items():
            if key not in keys:
                cands.append((0.5, a))

        def learned(a: Action) -> float:
            e = evidence.get(action_key(a))
            if not e or e[0] <= 0:
                return 0.0
            n, gain = e[0], max(e[1] / e[0], 0.0)
            models = e[3] / e[2] if e[2] > 0 else _size(ctx, a)
            return n / (n + EVIDENCE_PRIOR) * gain * VALUE_MODELS / max(models, 1.0)

        scored = [(p + self.knowledge_weight * learned(a), i, a) for i, (p, a) in enumerate(cands)]
        scored.sort(key=lambda t: (-t[0], t[1]))
        seen, out = set(), []
        for _, _, a in scored:
            k = action_key(a) + f":{a.width}:{a.steps}"
            if k not in seen:
                seen.add(k)
                out.append(a)
        return out


# -- the expert rules: evaluation patterns -> candidate actions, each rule one function ------------
Candidate = tuple[float, Action]  # (expert priority, action)


@dataclass(frozen=True)
class _Names:
    """The configuration's components as the rules name them."""

    att: str | None  # the attenuation module
    ebv: str | None  # its colour-excess parameter
    sfh: str | None  # the star formation history module
    age: str  # its age parameter

    @classmethod
    def of(cls, st: State) -> _Names:
        att = next((m for m in st.modules if m in ATTENUATION_MODELS), None)  # from sed_modules
        ebv = ATTENUATION_MODELS[att].colour_excess if att else None
        sfh = next((m for m in st.modules if m in SFH_MODELS), None)  # the SFH modules of sed_modules
        return cls(att, ebv, sfh, SFH_MODELS[sfh].age if sfh else "age")


def _c(priority: float, rule: str, why: str, **kw: Any) -> Candidate:
    return priority, Action(rationale=why, rule=rule, **kw)


def _edge(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R1 a best value on the edge of the explored values: look beyond it."""
    return [
        _c(
            0.9,
            "edge",
            f"best {e['module']}.{e['param']}={e['value']} sits on the {e['side']} edge of the values tried",
            type="widen",
            module=e["module"],
            param=e["param"],
            direction="up" if e["side"] == "high" else "down",
            steps=2,
        )
        for e in ctx.evaluation.edges
    ]


def _lyman_continuum(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R1b a significant detection below rest 912 Å, where a model with f_esc = 0 is dark: let
    ionising light escape (before the source is called an anomaly); around the best model first."""
    ev, st, sp = ctx.evaluation, ctx.state, ctx.space
    if not ("lyman_continuum_detected" in ev.patterns and "nebular" in st.modules and "f_esc" in sp.ladders["nebular"]):
        return []
    escape = tuple(float(v) for v in sp.ladders["nebular"]["f_esc"])
    if len(escape) <= 1 or len(st.indices("nebular", "f_esc")) >= len(escape):
        return []
    why = "flux below the Lyman limit the model cannot make: let ionising light escape (f_esc > 0)"
    return [
        _c(
            0.95 - 0.01 * (1 - w),
            "lyman_continuum",
            why,
            type="zoom",
            width=w,
            module="nebular",
            param="f_esc",
            values=escape,
        )
        for w in (1, 0)
    ]


def _uv_too_blue(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R2 the model UV is too bright for the optical: more dust, or older stars."""
    if "uv_too_blue" not in ctx.evaluation.patterns or not n.att:
        return []
    out = [
        _c(
            0.8,
            "uv_too_blue",
            "UV over-predicted relative to the optical: more attenuation",
            type="widen",
            module=n.att,
            param=n.ebv,
            direction="up",
            steps=2,
        )
    ]
    if n.sfh:
        why = "UV over-predicted: older populations"
        out.append(_c(0.6, "uv_too_blue", why, type="widen", module=n.sfh, param=n.age, direction="up", steps=2))
    return out


def _uv_too_red(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R3 the observed UV is brighter than the model: less dust, or a young burst."""
    if "uv_too_red" not in ctx.evaluation.patterns:
        return []
    out = []
    if n.att:
        why = "UV under-predicted: less attenuation"
        out.append(_c(0.75, "uv_too_red", why, type="widen", module=n.att, param=n.ebv, direction="down", steps=2))
    if n.sfh == "sfhdelayed":
        out.append(_c(0.7, "uv_too_red", "UV under-predicted: a recent burst of star formation", type="add_burst"))
    return out


def _infrared_excess(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R4 infrared excess the stellar model cannot make: hot dust around an AGN."""
    st, sp = ctx.state, ctx.space
    if "infrared_excess" not in ctx.evaluation.patterns:
        return []
    if "agn" not in st.modules and "agn" in sp.ladders:
        why = "near/mid-IR excess over the stellar+dust model: add an AGN"
        return [_c(0.85, "infrared_excess", why, type="add_module", module="agn")]
    if "agn" in st.modules:
        why = "IR excess remains: allow a stronger AGN"
        return [_c(0.8, "infrared_excess", why, type="widen", module="agn", param="fracAGN", direction="up", steps=2)]
    return []


def _poor_fit_ir(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R5b a poor fit with infrared coverage: an AGN is the usual missing component (or, without
    mid-IR data, a red rest-optical excess: the "V-shaped" SEDs of reddened AGN)."""
    ev, st, sp = ctx.evaluation, ctx.state, ctx.space
    ir_data = any(ev.regimes.get(r, {}).get("n", 0) for r in ("MIR", "FIR"))
    red_excess = any(p in ev.patterns for p in ("optical_underpredicted", "NIR_underpredicted"))
    if not (
        ev.chi2_red > 3
        and (ir_data or red_excess)
        and "agn" not in st.modules
        and "agn" in sp.ladders
        and "infrared_excess" not in ev.patterns
    ):
        return []
    why = "poor fit with an infrared or red rest-optical excess: try an AGN (disk, torus, polar dust)"
    return [_c(0.7, "poor_fit_ir", why, type="add_module", module="agn")]


def _red_optical(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R5c a red optical continuum explained by heavy dust is degenerate with a reddened AGN (the
    "Little Red Dots"): compare the two, whatever the χ²."""
    ev, st, sp = ctx.evaluation, ctx.state, ctx.space
    dust_now = ev.best.get(n.att or "", {}).get(n.ebv or "", 0.0) if n.att else 0.0
    if ev.colours.get("uv_opt", 0.0) >= 0.4 and dust_now >= 0.3 and "agn" not in st.modules and "agn" in sp.ladders:
        why = "red optical continuum fitted by heavy dust: compare with a reddened AGN"
        return [_c(0.97, "red_optical", why, type="add_module", module="agn")]
    return []


def _poor_fit(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R5 regimes wrong without a clear shape: another attenuation law, metallicity, a burst."""
    ev, st, sp = ctx.evaluation, ctx.state, ctx.space
    if not ("poor_fit_no_pattern" in ev.patterns or any(p.endswith("predicted") for p in ev.patterns)):
        return []
    out = []
    if n.att and SWAPS.get(n.att) in sp.ladders:
        why = "residual pattern across regimes: try the other attenuation law"
        out.append(_c(0.5, "poor_fit", why, type="swap_module", module=n.att, to=SWAPS[n.att]))
    if "bc03" in st.modules:
        why = "residual pattern: widen the metallicity range"
        out.append(
            _c(0.45, "poor_fit", why, type="widen", module="bc03", param="metallicity", direction="both", steps=1)
        )
    if n.sfh == "sfhdelayed" and len(st.indices(n.sfh, "f_burst")) == 1:
        out.append(_c(0.4, "poor_fit", "residual pattern: allow a late burst", type="add_burst"))
    return out


def _agn_unneeded(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R6 an AGN the data do not need."""
    ev, st, sp = ctx.evaluation, ctx.state, ctx.space
    if (
        "agn" in st.modules
        and ev.best.get("agn", {}).get("fracAGN", 1.0) <= min(sp.ladders["agn"]["fracAGN"])
        and "infrared_excess" not in ev.patterns
    ):
        why = "the best AGN fraction is the smallest allowed: drop the AGN"
        return [_c(0.4, "agn_unneeded", why, type="remove_module", module="agn")]
    return []


def _coupled_scans(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R0 coordinate scans: each physical component over its whole ladder with the rest at the best
    model (an expert's "re-fit the SFH with the dust fixed"). SFHs are the engine's cheap axis. The
    SFH couples to attenuation (a young burst behind dust looks like an older population) and to
    the nebular lines: scan it with each of those free to move one ladder step."""
    st, sp = ctx.state, ctx.space
    out = []
    if n.sfh and n.att:
        why = f"scan all of {n.sfh} with the attenuation free by one step"
        out.append(_c(0.985, "scan", why, type="scan", module=n.sfh, width=1, couple=(f"{n.att}.{n.ebv}",)))
    if n.sfh and "nebular" in st.modules and "logU" in sp.ladders.get("nebular", {}):
        why = f"scan all of {n.sfh} with the ionisation parameter free by one step"
        out.append(_c(0.975, "scan", why, type="scan", module=n.sfh, width=1, couple=("nebular.logU",)))
    return out


def _block_scans(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R0b coupled blocks over their whole ladders jointly, the rest at the best model: the basins
    the one-module scans cannot cross. The nebular lines with the stellar metallicity and the burst
    (a young burst's lines against an older population's continuum); the attenuation with the main
    population's age and e-folding time, the burst and the metallicity (dust-age-Z)."""
    st, sp, sfh = ctx.state, ctx.space, n.sfh
    if sfh != "sfhdelayed":
        return []
    nebular_block = (("bc03", "metallicity"), (sfh, "f_burst"), (sfh, "age_burst"), (sfh, "tau_burst"))
    continuum_block = ((sfh, "age_main"), (sfh, "tau_main"), (sfh, "f_burst"), ("bc03", "metallicity"))
    blocks = (
        (0.98, "nebular", nebular_block, "scan the nebular lines jointly with the stellar metallicity and the burst"),
        (
            0.978,
            n.att,
            continuum_block,
            "scan the attenuation jointly with the population's age, e-folding time, burst and metallicity",
        ),
    )
    out = []
    for score, module, coupled, why in blocks:
        if module in st.modules:
            couple = tuple(f"{m}.{p}" for m, p in coupled if m in st.modules and p in sp.ladders.get(m, {}))
            out.append(_c(score, "scan", why, type="scan", module=module, width=8, couple=couple))
    return out


def _component_scans(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """Each component over its whole ladders with the others at the best model."""
    return [
        _c(
            0.99 - 0.01 * rank,
            "scan",
            f"scan all of {m} with the other components at the best model",
            type="scan",
            module=m,
            width=0,
        )
        for rank, m in enumerate((n.sfh, n.att, "nebular", "bc03"))
        if m in ctx.state.modules
    ]


def _converge(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R7 converge: the best value and its ladder neighbours in every parameter, until nothing moves."""
    return [_c(0.95, "converge", "refine every parameter around the best model", type="zoom", width=1)]


def _runner_ups(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R9 other basins the last fit saw: the best models of other parameter blocks, refined in turn."""
    ev, st, sp = ctx.evaluation, ctx.state, ctx.space
    out = []
    for rank, (chi2_alt, alt) in enumerate(ctx.alternatives[:4]):
        around = {
            f"{m}.{p}": float(v)
            for m, params in alt.items()
            for p, v in params.items()
            if p in sp.ladders.get(m, {})
            and m in st.modules
            and len(sp.ladders[m][p]) > 1
            and v != ev.best.get(m, {}).get(p)  # only what differs from the best model
        }
        if around:
            why = f"refine around the runner-up model (chi2 {chi2_alt:.1f})"
            out.append(
                _c(0.55 - 0.02 * rank, "other_basin", why, type="zoom", width=1, around=tuple(sorted(around.items())))
            )
    return out


def _neighbour_basins(ctx: ProposalContext, n: _Names) -> list[Candidate]:
    """R8 other basins: the neighbourhood of the best model at other metallicities, ages, attenuation."""
    ev, st, sp = ctx.evaluation, ctx.state, ctx.space
    out = []
    for m, p in (("bc03", "metallicity"), (n.sfh, n.age), (n.sfh, "f_burst"), (n.att, n.ebv), ("nebular", "zgas")):
        if m not in st.modules or p not in sp.ladders.get(m, {}):
            continue
        ladder = sp.ladders[m][p]
        b = sp.nearest_index(m, p, ev.best.get(m, {}).get(p, ladder[0]))
        for j in (b - 2, b + 2, b - 3, b + 3):
            if 0 <= j < len(ladder):
                why = f"the best model's neighbourhood with {m}.{p}={ladder[j]}"
                out.append(
                    _c(0.3, "other_basin", why, type="zoom", width=1, module=m, param=p, values=(float(ladder[j]),))
                )
    return out


# In this order: equal priorities keep it (the ranking is a stable sort)
EXPERT_RULES: tuple[Callable[[ProposalContext, _Names], list[Candidate]], ...] = (
    _edge,
    _lyman_continuum,
    _uv_too_blue,
    _uv_too_red,
    _infrared_excess,
    _poor_fit_ir,
    _red_optical,
    _poor_fit,
    _agn_unneeded,
    _coupled_scans,
    _block_scans,
    _component_scans,
    _converge,
    _runner_ups,
    _neighbour_basins,
)
