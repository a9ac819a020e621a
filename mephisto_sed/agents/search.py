"""Tree search over configurations for one source, with memory and budgets.

A node is a configuration with its fit and evaluation; its children are the configurations
its proposals lead to. The search goes deep from the best node while that improves, and wide
(the best node that still has untried proposals) when it stalls. A configuration already tried,
or one inside a configuration already tried, is never run. When knowledge placed the first look
the even first look runs once as a second root when the search stalls without a good fit, before it
stops on one, and at the latest once half its budget is spent (never on knowledge alone). It
stops on a good fit that stops improving, or when a budget (models, steps, tokens, wall time) is
spent. Then it fits the posterior box around its best model that the estimates (``bayes.*``)
come from (``estimate.py``), so they do not depend on the path. A source whose data keep features
no configuration explained is an anomaly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np
from typing_extensions import TypedDict  # pydantic reads its schema on Python 3.11

from .actions import Action, ActionError, apply_action
from .domain import Domain
from .estimate import Box, combine, extensions, grown, initial_box, tied
from .evaluate import Evaluation, evaluate, observed_levels
from .execute import Execution, Source, execute
from .policy import KnowledgeHint, Outcomes, Policy, ProposalContext
from .records import dump, load
from .space import SearchSpace, State

__all__ = ["Budget", "Node", "SearchResult", "SearchTree", "Step", "search", "ANOMALY_CHI2_RED"]

ANOMALY_CHI2_RED = 5.0  # best reduced χ² above which no configuration explains the source
IMPROVEMENT = 0.01  # relative χ² decrease that counts as progress
EVEN_LOOK_BY = 0.5  # fraction of the model (or step) budget by which a search from a learned look has run the even one


@dataclass
class Budget:
    max_models: int = 200_000
    max_steps: int = 80
    max_tokens: int = 10_000
    max_seconds: float = 300.0
    max_models_per_step: int = 50_000
    # after the search: the posterior box around the best model that the estimates come from
    # (at most max_models too); counted in the models a search reports, beside max_models
    max_estimate_models: int = 120_000


@dataclass
class Node:
    id: int
    parent: int | None
    state: State
    action: Action | None
    execution: Execution
    evaluation: Evaluation
    proposals: list[Action] | None = None
    exhausted: bool = False
    expansions: int = 0
    # knowledge for this situation, fetched when the node was recorded (the platform does so before
    # the next step, so a search never waits on it); None: ask the tree's ``hints`` when expanded
    hints: list[KnowledgeHint] | None = None
    hints_missing: str = ""  # why there is none ("unavailable: ..."), recorded in the trace

    @property
    def chi2(self) -> float:
        return self.execution.chi2


def ranked(nodes: list[Node]) -> list[Node]:
    """``nodes`` best first. Several steps often hold the same best model (a scan at the best model
    of the step before): their χ² are equal but for the last bits, which differ between machines
    and libraries, so χ² that tie (``estimate.tied``) count as equal and keep the order the
    nodes were made in — the same search on every machine."""
    by_chi2 = sorted(nodes, key=lambda n: (n.chi2, n.id))
    group, start, rank = -1, -np.inf, {}
    for n in by_chi2:
        if not tied(n.chi2, start):  # also opens a group after ±inf/NaN
            group, start = group + 1, n.chi2
        rank[n.id] = group
    return sorted(nodes, key=lambda n: (rank[n.id], n.id))


def best_node(nodes: list[Node]) -> Node:
    return ranked(nodes)[0]


class TraceRecord(TypedDict):
    """What :meth:`SearchResult.trace_json` writes (the platform's ``SourceResult.trace_json``)."""

    id: str
    redshift: float
    policy: str
    stop_reason: str
    anomaly: bool
    anomaly_reason: str
    models_evaluated: int
    steps: int
    tokens: int
    llm_cost_usd: float
    rejected_actions: int
    best: dict[str, Any]  # chi2_red, modules, model ({module: {parameter: value}})
    steps_detail: list[dict[str, Any]]  # one entry per step: action, rationale, evaluation


@dataclass
class SearchResult:
    source: Source
    nodes: list[Node]
    best: Node
    trace: list[dict[str, Any]]
    models_evaluated: int
    steps: int
    tokens: int
    stop_reason: str
    anomaly: bool
    anomaly_reason: str
    rejected_actions: int
    seconds: float
    policy: str = "expert"
    cost_usd: float = 0.0  # LLM cost by the policy's cost model
    # the estimates (bayes.* and errors) over the completed posterior box, see agents/estimate.py
    estimate: dict[str, Any] = field(default_factory=dict)
    # columns found before the search (a photometric redshift's: agents/photoz_search.py)
    extra_row: dict[str, Any] = field(default_factory=dict)

    def models_to_reach(self, chi2_target: float) -> int | None:
        """Models evaluated until the best χ² first reached ``chi2_target`` (None if never)."""
        for step in self.trace:
            if step["best_chi2"] <= chi2_target:
                return int(step["models_cumulative"])
        return None

    def trace_json(self) -> str:
        record: TraceRecord = {
            "id": self.source.id,
            "redshift": self.source.redshift,
            "policy": self.policy,
            "stop_reason": self.stop_reason,
            "anomaly": self.anomaly,
            "anomaly_reason": self.anomaly_reason,
            "models_evaluated": self.models_evaluated,
            "steps": self.steps,
            "tokens": self.tokens,
            "llm_cost_usd": self.cost_usd,
            "rejected_actions": self.rejected_actions,
            "best": {
                "chi2_red": self.best.evaluation.chi2_red,
                "modules": list(self.best.state.modules),
                "model": self.best.execution.best_model,
            },
            "steps_detail": self.trace,
        }
        return json.dumps(record, indent=1, default=json_default)

    def trace_markdown(self) -> str:
        ev = self.best.evaluation
        lines = [
            f"# Source {self.source.id} (z = {self.source.redshift:.3f})",
            "",
            f"* stop: {self.stop_reason}; {self.steps} steps, {self.models_evaluated:,} models, "
            f"{self.rejected_actions} proposals rejected",
            f"* best: reduced χ² = {ev.chi2_red:.2f} with {' + '.join(self.best.state.modules)}",
            f"* anomaly: {'**yes** — ' + self.anomaly_reason if self.anomaly else 'no'}",
            "",
            "| step | from | action | why | models | χ²_red | best χ²_red | patterns |",
            "|---:|---:|---|---|---:|---:|---:|---|",
        ]
        for s in self.trace:
            lines.append(
                f"| {s['step']} | {s['parent'] if s['parent'] is not None else '—'} | {s['action']} | "
                f"{s['rationale']} | {s['models']:,} | {s['chi2_red']:.2f} | {s['best_chi2_red']:.2f} | "
                f"{', '.join(s['patterns'])} |"
            )
        lines += ["", "## Best fit", "", "```", ev.summary(), "```"]
        return "\n".join(lines)


def json_default(o: Any) -> Any:
    """JSON for numpy scalars (bools included) and arrays; anything else as its text."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


class KnowledgeUnavailable(RuntimeError):
    """Raised by a tree's ``hints`` when the knowledge could not be asked (no distiller answered):
    the step goes on without it and its trace entry says so."""


@dataclass
class Step:
    """The next configuration to run: a child of node ``parent`` made by ``action``."""

    index: int
    parent: int | None
    action: Action | None
    state: State
    knowledge: str = ""  # why no knowledge ranked this step's proposals when it was asked for ("" = it did)


class SearchTree:
    """The search as a resumable state machine, so any process can continue it.

    ``begin`` gives the first step, ``record`` adds a step's fit and evaluation, ``next`` gives the
    next step (or None when the search stops). In-process, :func:`search` drives it; on the platform
    the proposer service drives it and keeps it between steps with :meth:`to_dict`/:meth:`from_dict`.
    Executions and evaluations are normalised through JSON on ``record``, so a tree restored from its
    record continues exactly as the original would.
    """

    def __init__(
        self,
        source: Source,
        space: SearchSpace,
        policy: Policy,
        budget: Budget | None = None,
        hints: Callable[[Evaluation], list[KnowledgeHint]] | None = None,
        patience: int = 6,
        seed: int = 0,
        outcomes: Callable[[float], Outcomes] | None = None,
    ):
        self.source, self.space, self.policy = source, space, policy
        self.budget = budget or Budget()
        self.hints = hints
        self.outcomes = outcomes  # redshift -> other galaxies' best values (places the first look)
        self.patience, self.seed = patience, seed
        self.nodes: list[Node] = []
        self.memory: set[str] = set()
        self.trace: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.models = self.tokens = self.rejected = 0
        self.extra_row: dict[str, Any] = {}  # columns found before the search (a photometric redshift's)
        # an anomaly at the given redshift is tried at other redshifts (not where z was searched for)
        self.check_other_redshift = True
        self.cost_usd = 0.0
        self.since_improvement = 0
        self.even_start: State | None = None  # the even first look, kept while a learned one leads
        # after the even first look ran as a second root, the search follows that root's subtree as a
        # search without knowledge would (its best first), until it stalls: [root id, its best χ²,
        # steps since that improved]; None otherwise
        self.focus: list[Any] | None = None
        # once the search stops: {"box": Box.to_dict(), "slabs": [node ids], "models": n, "done": bool}
        self.estimation: dict[str, Any] | None = None
        self.best_chi2 = np.inf
        self.stop = ""
        self.pending: Step | None = None
        self.started = time.time()
        self.elapsed = 0.0  # seconds spent up to the last record (wall time across processes)

    # -- driving ------------------------------------------------------------------------------
    def begin(self) -> Step:
        outcomes = self.outcomes(self.source.redshift) if self.outcomes is not None else None
        start = self.policy.initial(self.space, self.source, self.budget.max_models, outcomes=outcomes)
        if outcomes:
            even = self.policy.initial(self.space, self.source, self.budget.max_models)
            self.even_start = even if even.key != start.key else None
        if self.space.size(start) > self.budget.max_models:
            raise ActionError(f"the initial configuration ({self.space.size(start):,} models) exceeds the budget")
        self.pending = Step(0, None, None, start)
        return self.pending

    def record(self, step: Step, execution: Execution, evaluation: Evaluation) -> Node:
        """Add the fit and evaluation of ``step`` (which must be the pending step)."""
        if self.pending is None or step.index != self.pending.index:
            raise ValueError(f"step {step.index} is not the pending step")
        execution = load(Execution, json.loads(json.dumps(dump(execution), default=json_default)))
        evaluation = load(Evaluation, json.loads(json.dumps(dump(evaluation), default=json_default)))
        self.pending = None
        parent = self.nodes[step.parent] if step.parent is not None else None
        self.memory.add(step.state.key)
        self.models += execution.n_models
        node = Node(len(self.nodes), step.parent, step.state, step.action, execution, evaluation)
        self.nodes.append(node)
        if _is_estimate(step.action):  # a piece of the posterior box: never expanded
            node.exhausted = True
            assert self.estimation is not None
            self.estimation["slabs"].append(node.id)
            self.estimation["models"] += execution.n_models
        best = best_node(self.nodes)
        gain = (
            (parent.chi2 - node.chi2) / parent.chi2 if parent and np.isfinite(parent.chi2) and parent.chi2 > 0 else 0.0
        )
        self.elapsed = time.time() - self.started
        action = step.action
        entry = {
            "step": len(self.trace),
            "node": node.id,
            "parent": node.parent,
            "action": (f"estimate: {action.rationale}" if _is_estimate(action) else action.describe())
            if action
            else "initial",
            "action_data": action.to_dict() if action else {},
            "rationale": action.rationale if action else self._first_look_why(),
            "rule": action.rule if action else "initial",
            "models": execution.n_models,
            "models_cumulative": self.models,
            "chi2": node.chi2,
            "chi2_red": evaluation.chi2_red,
            "best_chi2": best.chi2,
            "best_chi2_red": best.evaluation.chi2_red,
            "gain": gain,
            "patterns": evaluation.patterns,
            "signature": (parent.evaluation.signature() if parent else evaluation.signature()).round(4).tolist(),
            "seconds": round(self.elapsed, 3),
        }
        if step.knowledge:
            entry["knowledge"] = step.knowledge
        self.trace.append(entry)
        self.history.append({"action": entry["action"], "gain": gain})
        if len(self.nodes) > 1:
            if node.chi2 < self.best_chi2 * (1 - IMPROVEMENT):
                self.since_improvement = 0
            else:
                self.since_improvement += 1
        self.best_chi2 = min(self.best_chi2, node.chi2)
        self._follow(node)
        return node

    def _follow(self, node: Node) -> None:
        """Keep the focus on the even first look's subtree up to date (see ``focus``)."""
        if node.parent is None and node.id > 0:  # the even first look, run as a second root
            self.focus = [node.id, node.chi2 if np.isfinite(node.chi2) else np.finfo(float).max, 0]  # JSON-safe
        elif self.focus is not None and not _is_estimate(node.action) and self._in_focus(node):
            if node.chi2 < self.focus[1] * (1 - IMPROVEMENT):
                self.focus[1], self.focus[2] = node.chi2, 0
            else:
                self.focus[2] += 1
        if self.focus is not None and self.focus[2] >= self.patience:
            self.focus = None  # the subtree stalled: the whole tree again

    def _in_focus(self, node: Node) -> bool:
        """Whether ``node`` descends from the focused root (or is it)."""
        assert self.focus is not None
        n: Node | None = node
        while n is not None:
            if n.id == self.focus[0]:
                return True
            n = self.nodes[n.parent] if n.parent is not None else None
        return False

    def next(self) -> Step | None:
        """The next configuration to run, or None when the search stops (see :attr:`stop`)."""
        if self.pending is not None:
            return self.pending
        while not self.stop:
            self.stop = self._budget_spent()
            if self.stop:
                break
            best = best_node(self.nodes)
            restart = self._restart(stalled=not best.evaluation.good and self.since_improvement >= self.patience)
            if restart is not None:
                return restart
            if (
                best.evaluation.good
                and self.focus is None
                and self.since_improvement >= self.patience
                and _refined(best, self.space, self.tried)
            ):
                # never stop on knowledge alone: a search from a learned first look has the even
                # one's evidence too before it calls a fit good enough to stop (issue 17)
                restart = self._restart(stalled=True)
                if restart is not None:
                    return restart
                self.stop = "good fit, no longer improving"
                break
            node = self._node_to_expand()
            if node is None:
                self.stop = "no proposal left"
                break
            step = self._first_new_step(node)
            if step is not None:
                return step
            node.exhausted = True
        step = self._estimation_step()
        if step is None:
            self._check_other_redshift()
        return step

    def _check_other_redshift(self) -> None:
        """Once the search is over, an anomaly at the catalogue's redshift is tried at every other
        redshift (once: the columns stay in ``extra_row``): a wrong redshift is a cause to name."""
        if not self.check_other_redshift or not np.isfinite(self.source.redshift):
            return
        if any(k.startswith("other_redshift.") for k in self.extra_row):
            return
        best = best_node(self.nodes)
        if not np.isfinite(best.chi2) or not _anomaly(best.evaluation)[0]:
            return
        from .photoz_search import other_redshift  # photoz_search imports the policies, which import this

        self.extra_row.update(other_redshift(self.space, self.source, best.chi2, self.policy))

    def _budget_spent(self) -> str:
        """Which budget is spent ("" while none is)."""
        budget = self.budget
        if self.models >= budget.max_models:
            return "model budget spent"
        if len(self.trace) >= budget.max_steps:
            return "step budget spent"
        if self.tokens >= budget.max_tokens:
            return "token budget spent"
        if time.time() - self.started >= budget.max_seconds:
            return "time budget spent"
        return ""

    def _node_to_expand(self) -> Node | None:
        """Deep: the best node; wide, when the search stalls: the least-expanded of the best few, so
        every promising branch gets a turn. While the even first look's subtree is followed, the
        best node in it (as the search without knowledge would expand it)."""
        if self.focus is not None:
            followed = ranked([n for n in self.nodes if not n.exhausted and self._in_focus(n)])
            if followed:
                followed[0].expansions += 1
                return followed[0]
            self.focus = None  # nothing left to expand in it
        order = ranked([n for n in self.nodes if not n.exhausted])
        if not order:
            return None
        if self.since_improvement < self.patience or len(order) == 1:
            node = order[0]
        else:
            rank = {n.id: i for i, n in enumerate(order)}
            node = min(order[:5], key=lambda n: (n.expansions, rank[n.id]))
        node.expansions += 1
        return node

    def _knowledge_for(self, node: Node) -> tuple[list[KnowledgeHint], str]:
        """The knowledge for expanding ``node`` and, when there is none, why (for the trace)."""
        if node.hints is not None:
            return node.hints, node.hints_missing
        if self.hints is None:
            return [], ""
        try:
            return self.hints(node.evaluation), ""
        except KnowledgeUnavailable as exc:  # searched without it, and the trace says so
            return [], f"unavailable: {exc}"

    def _first_new_step(self, node: Node) -> Step | None:
        """The node's next proposal that is valid and not tried yet, as the pending step."""
        budget = self.budget
        if node.proposals is None:
            hints, node.hints_missing = self._knowledge_for(node)
            ctx = ProposalContext(
                self.space,
                self.source,
                node.state,
                node.evaluation,
                self.history[-8:],
                hints,
                budget.max_models - self.models,
                node.execution.alternatives,
                budget.max_tokens - self.tokens,
                budget.max_seconds - (time.time() - self.started),
            )
            node.proposals = list(self.policy.propose(ctx))
            self.tokens += int(getattr(self.policy, "last_tokens", 0))
            self.cost_usd += float(getattr(self.policy, "last_cost", 0.0))
        while node.proposals:
            action = node.proposals.pop(0)
            try:
                cap = min(budget.max_models_per_step, budget.max_models - self.models)
                new = apply_action(self.space, node.state, action, node.execution.best_model, max_models=max(cap, 1))
            except ActionError:
                self.rejected += 1
                continue
            if self.tried(new):
                continue
            self.pending = Step(len(self.trace), node.id, action, new, node.hints_missing)
            return self.pending
        return None

    # -- the estimate: a completed posterior box around the best model (agents/estimate.py) ------
    def _estimation_step(self) -> Step | None:
        """The next piece of the posterior box, or None once it is complete (or its budget spent)."""
        est = self.estimation
        if est is not None and est["done"]:
            return None
        cap = min(self.budget.max_estimate_models, self.budget.max_models)  # a small search, a small box
        if est is None:
            searched = [n for n in self.nodes if not _is_estimate(n.action)]
            best = best_node(searched)
            if cap <= 0 or not np.isfinite(best.chi2) or not best.execution.best_model:
                self.estimation = {"box": None, "slabs": [], "models": 0, "done": True}
                return None
            box = initial_box(self.space, best, searched, cap)
            est = self.estimation = {"box": box.to_dict(), "slabs": [], "models": 0, "done": False, "parent": best.id}
            same = [n for n in self.nodes if n.state.key == box.state().key]
            if same:  # the search already ran exactly this configuration
                est["slabs"].append(same[0].id)
            else:
                return self._estimate_pending(box.state(), "posterior box around the best model")
        box = Box.from_dict(est["box"])
        _, marginals = combine([self.nodes[i].execution for i in est["slabs"]])
        for mass, m, p, new in extensions(self.space, box, marginals):
            slab = box.state(override=(m, p, new))
            if est["models"] + self.space.size(slab) > cap:
                continue
            est["box"] = grown(box, m, p, new).to_dict()
            value = self.space.ladders[m][p][new]
            return self._estimate_pending(slab, f"{m}.{p} = {value:g} (edge mass {mass:.0%} of the peak)")
        est["done"] = True
        return None

    def _estimate_pending(self, state: State, why: str) -> Step:
        action = Action("zoom", rationale=why, rule="estimate")
        assert self.estimation is not None  # made above when the estimate began
        self.pending = Step(len(self.trace), self.estimation["parent"], action, state)
        return self.pending

    def estimate(self) -> dict[str, Any]:
        """``bayes.*`` over the posterior box, with ``estimate.models`` and ``estimate.complete``."""
        est = self.estimation
        if not est or not est["slabs"]:
            return {}
        row, marginals = combine([self.nodes[i].execution for i in est["slabs"]])
        if not row:
            return {}
        box = Box.from_dict(est["box"])
        row["estimate.models"] = int(est["models"])
        # complete: no side of the box still carries posterior mass (not stopped by its model budget)
        row["estimate.complete"] = bool(est["done"] and not extensions(self.space, box, marginals))
        return row

    def _first_look_why(self) -> str:
        if not self.nodes[:-1]:
            placed = self.even_start is not None
            return "coarse first look at the base modules" + (", placed where similar galaxies ended" if placed else "")
        if self.since_improvement < self.patience:  # still improving: the budget rule of _restart
            return "the even first look, with half the budget spent: never run out of it on knowledge alone"
        if best_node(self.nodes[:-1]).evaluation.good:
            return "the even first look, before stopping on a good fit: never on knowledge alone"
        return "the even first look: the search from the one placed by knowledge stalled"

    def _half_spent(self, models: int, steps: int) -> bool:
        return models >= self.budget.max_models * EVEN_LOOK_BY or steps >= self.budget.max_steps * EVEN_LOOK_BY

    def _restart(self, stalled: bool) -> Step | None:
        """The even first look, once, when the search from a first look placed by knowledge has
        ``stalled`` (this galaxy may be unlike those the knowledge came from) or would stop on a
        good fit, and at the latest once half the model or step budget is spent: a learned look can
        lead into a basin that keeps improving a little at every step and never stalls, and the
        budget would then run out on knowledge alone (issue 17: COSMOS 36148 from 54 to 32 in χ²
        over 190,000 models while the even look's path reaches the grid's 26.7 in 66,000)."""
        even = self.even_start
        if even is None or not (stalled or self._half_spent(self.models, len(self.trace))):
            return None
        self.even_start = None
        if self.tried(even) or self.space.size(even) > self.budget.max_models - self.models:
            return None
        self.pending = Step(len(self.trace), None, None, even)
        return self.pending

    def tried(self, state: State) -> bool:
        """Whether every model of ``state`` was already fitted: the same configuration, or one
        inside a configuration already run (a scan at the best model of a wider scan, say)."""
        return state.key in self.memory or any(state.within(n.state) for n in self.nodes)

    def result(self) -> SearchResult:
        best = best_node(self.nodes)
        anomaly, reason = _anomaly(best.evaluation)
        if anomaly and self.extra_row.get("other_redshift.better"):
            other = self.extra_row
            reason += (
                f"; another redshift fits better: z = {other['other_redshift.z']:g} (chi2 "
                f"{other['other_redshift.chi2']:.1f} against {best.chi2:.1f} at z = {self.source.redshift:g}): "
                "the catalogue redshift may be wrong"
            )
        return SearchResult(
            self.source,
            self.nodes,
            best,
            self.trace,
            self.models,
            len(self.trace),
            self.tokens,
            self.stop,
            anomaly,
            reason,
            self.rejected,
            self.elapsed,
            getattr(self.policy, "name", "policy"),
            self.cost_usd,
            self.estimate(),
            dict(self.extra_row),
        )

    # -- persistence --------------------------------------------------------------------------
    # A tree is a small mutable header plus one immutable record per node (its state, action, fit,
    # evaluation and trace entry), so a process that keeps the tree between steps writes only the
    # header and the new node's record: O(1) per step instead of the whole tree.
    def header(self) -> dict[str, Any]:
        return {
            "version": 2,
            "source": dump(self.source),
            "budget": asdict(self.budget),
            "patience": self.patience,
            "seed": self.seed,
            "n_nodes": len(self.nodes),
            "mutable": [
                [None if n.proposals is None else [dump(a) for a in n.proposals], n.exhausted, n.expansions]
                for n in self.nodes
            ],
            "models": self.models,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
            "rejected": self.rejected,
            "since_improvement": self.since_improvement,
            "even_start": dump(self.even_start) if self.even_start else None,
            "focus": self.focus,
            "estimation": self.estimation,
            "best_chi2": self.best_chi2,
            "stop": self.stop,
            "pending": dump(self.pending) if self.pending else None,
            "started": self.started,
            "elapsed": self.elapsed,
            "extra_row": self.extra_row,
            "check_other_redshift": self.check_other_redshift,
        }

    def node_record(self, i: int) -> dict[str, Any]:
        return {**dump(self.nodes[i]), "trace": self.trace[i], "history": self.history[i]}

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to continue the search elsewhere (JSON-safe)."""
        return {**self.header(), "records": [self.node_record(i) for i in range(len(self.nodes))]}

    @classmethod
    def from_parts(
        cls,
        header: dict[str, Any],
        records: list[dict[str, Any]],
        space: SearchSpace,
        policy: Policy,
        hints: Callable[[Evaluation], list[KnowledgeHint]] | None = None,
    ) -> SearchTree:
        d = header
        if len(records) != d["n_nodes"]:
            raise ValueError(f"{len(records)} node records for a tree of {d['n_nodes']} nodes")
        tree = cls(load(Source, d["source"]), space, policy, Budget(**d["budget"]), hints, d["patience"], d["seed"])
        tree.nodes = [load(Node, r) for r in records]
        for node, (proposals, exhausted, expansions) in zip(tree.nodes, d["mutable"]):
            node.proposals = None if proposals is None else [load(Action, a) for a in proposals]
            node.exhausted, node.expansions = exhausted, expansions
        tree.memory = {n.state.key for n in tree.nodes}
        tree.trace = [r["trace"] for r in records]
        tree.history = [r["history"] for r in records]
        tree.models, tree.tokens, tree.rejected = d["models"], d["tokens"], d["rejected"]
        tree.cost_usd = d.get("cost_usd", 0.0)
        tree.since_improvement, tree.best_chi2, tree.stop = d["since_improvement"], d["best_chi2"], d["stop"]
        tree.pending = load(Step, d["pending"]) if d["pending"] else None
        tree.even_start = load(State, d["even_start"]) if d.get("even_start") else None
        tree.focus = list(d["focus"]) if d.get("focus") else None
        tree.estimation = d.get("estimation")
        tree.started, tree.elapsed = d["started"], d["elapsed"]
        tree.extra_row = dict(d.get("extra_row") or {})
        tree.check_other_redshift = bool(d.get("check_other_redshift", True))
        return tree

    @classmethod
    def from_dict(
        cls,
        d: dict[str, Any],
        space: SearchSpace,
        policy: Policy,
        hints: Callable[[Evaluation], list[KnowledgeHint]] | None = None,
    ) -> SearchTree:
        return cls.from_parts(d, d["records"], space, policy, hints)


def search(
    source: Source,
    space: SearchSpace,
    policy: Policy,
    budget: Budget | None = None,
    knowledge: Any | None = None,
    patience: int = 6,
    seed: int = 0,
    check_other_redshift: bool = True,
) -> SearchResult:
    """Search configurations for ``source``. ``knowledge`` (a KnowledgeBase) places the first look
    and ranks proposals. ``check_other_redshift``: an anomaly is tried at other redshifts (off where
    the redshift is itself a photometric one)."""
    hints = outcomes = None
    if knowledge is not None:  # only what was learned on galaxies like this one (agents/domain.py)
        domain = Domain.of(source)
        hints = partial(knowledge.hints, domain=domain) if domain is not None else None
        levels = observed_levels(source)  # outcomes of galaxies of like SED shape place the first look
        outcomes = partial(knowledge.outcomes, domain=domain, levels=levels) if domain is not None else None
    tree = SearchTree(source, space, policy, budget, hints, patience, seed, outcomes)
    tree.check_other_redshift = check_other_redshift
    step: Step | None = tree.begin()
    while step is not None:
        ex = execute(space, step.state, source)
        tree.record(step, ex, evaluate(ex, source, space))
        step = tree.next()
    return tree.result()


def _refined(best: Node, space: SearchSpace, tried: Callable[[State], bool]) -> bool:
    """Whether the neighbourhood of the best model has been searched (its zoom was run)."""
    if best.action is not None and best.action.type == "zoom":
        return True
    try:
        zoomed = apply_action(space, best.state, Action("zoom", width=1), best.execution.best_model, max_models=10**12)
    except ActionError:
        return True  # zooming changes nothing: already as fine as the ladders go
    return tried(zoomed)


def _anomaly(ev: Evaluation) -> tuple[bool, str]:
    """Whether the data keep features no allowed physics explained after the search, and which."""
    if not np.isfinite(ev.chi2_red):
        return True, "no model fits at all"
    reasons = []
    if ev.lyman_continuum:  # still unexplained after the search could let ionising light escape
        bands = ", ".join(f"{b['band']} (S/N {b['snr']:.0f}, {b['residual']:+.0f} sigma)" for b in ev.lyman_continuum)
        escape = ev.best.get("nebular", {}).get("f_esc", 0.0)
        reasons.append(
            f"flux below the Lyman limit (rest < 912 A) unexplained in {bands} with f_esc = {escape:g}: "
            "contamination or a wrong redshift"
        )
    if ev.chi2_red > ANOMALY_CHI2_RED:
        bad = [f"{k} {v['mean']:+.1f} sigma" for k, v in ev.regimes.items() if v["n"] and abs(v["mean"]) >= 2]
        reasons.append(
            f"best reduced chi2 {ev.chi2_red:.1f} > {ANOMALY_CHI2_RED:g}; unexplained: "
            f"{', '.join(bad) or 'scatter across all regimes'}"
        )
    # an implausible estimate alone is a warning (the results' ``warnings`` column), not an anomaly
    return bool(reasons), "; ".join(reasons)


def hints_from(records: list[dict[str, Any]]) -> list[KnowledgeHint]:
    return [KnowledgeHint(**r) for r in records]


def _is_estimate(action: Action | None) -> bool:
    return action is not None and action.rule == "estimate"
