"""Tree search over configurations for one source, with memory and budgets.

A node is a configuration with its fit and evaluation; its children are the configurations
its proposals lead to. The search goes deep from the best node while that improves, and wide
(the best node that still has untried proposals) when it stalls. A configuration already tried
is never run again. It stops on a good fit that stops improving, or when a budget (models,
steps, tokens, wall time) is spent. A source no configuration explains is an anomaly.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .actions import Action, ActionError, apply_action
from .evaluate import Evaluation, evaluate
from .execute import Execution, Source, execute
from .policy import KnowledgeHint, Policy, ProposalContext
from .space import SearchSpace, State

__all__ = ["Budget", "Node", "SearchResult", "search", "ANOMALY_CHI2_RED"]

ANOMALY_CHI2_RED = 5.0  # best reduced χ² above which no configuration explains the source
IMPROVEMENT = 0.01  # relative χ² decrease that counts as progress


@dataclass
class Budget:
    max_models: int = 200_000
    max_steps: int = 80
    max_tokens: int = 10_000
    max_seconds: float = 300.0
    max_models_per_step: int = 50_000


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

    @property
    def chi2(self) -> float:
        return self.execution.chi2


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

    def models_to_reach(self, chi2_target: float) -> int | None:
        """Models evaluated until the best χ² first reached ``chi2_target`` (None if never)."""
        for step in self.trace:
            if step["best_chi2"] <= chi2_target:
                return int(step["models_cumulative"])
        return None

    def trace_json(self) -> str:
        return json.dumps(
            {
                "id": self.source.id,
                "redshift": self.source.redshift,
                "policy": self.policy,
                "stop_reason": self.stop_reason,
                "anomaly": self.anomaly,
                "anomaly_reason": self.anomaly_reason,
                "models_evaluated": self.models_evaluated,
                "steps": self.steps,
                "tokens": self.tokens,
                "rejected_actions": self.rejected_actions,
                "best": {
                    "chi2_red": self.best.evaluation.chi2_red,
                    "modules": list(self.best.state.modules),
                    "model": self.best.execution.best_model,
                },
                "steps_detail": self.trace,
            },
            indent=1,
            default=_json_default,
        )

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


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def search(
    source: Source,
    space: SearchSpace,
    policy: Policy,
    budget: Budget | None = None,
    knowledge: Any | None = None,
    patience: int = 6,
    seed: int = 0,
) -> SearchResult:
    """Search configurations for ``source``. ``knowledge`` (a KnowledgeBase) ranks proposals."""
    budget = budget or Budget()
    rng = np.random.default_rng(seed)  # noqa: F841 - ties are broken by order; kept for stochastic policies
    t0 = time.perf_counter()
    nodes: list[Node] = []
    memory: set[str] = set()
    trace: list[dict[str, Any]] = []
    models = tokens = rejected = 0
    history: list[dict[str, Any]] = []

    def run(state: State, parent: Node | None, action: Action | None) -> Node:
        nonlocal models
        memory.add(state.key)
        ex = execute(space, state, source)
        models += ex.n_models
        ev = evaluate(ex, source, space)
        node = Node(len(nodes), parent.id if parent else None, state, action, ex, ev)
        nodes.append(node)
        best = min(nodes, key=lambda n: n.chi2)
        gain = (
            (parent.chi2 - node.chi2) / parent.chi2 if parent and np.isfinite(parent.chi2) and parent.chi2 > 0 else 0.0
        )
        step = {
            "step": len(trace),
            "node": node.id,
            "parent": node.parent,
            "action": action.describe() if action else "initial",
            "action_data": action.to_dict() if action else {},
            "rationale": action.rationale if action else "coarse first look at the base modules",
            "rule": action.rule if action else "initial",
            "models": ex.n_models,
            "models_cumulative": models,
            "chi2": node.chi2,
            "chi2_red": ev.chi2_red,
            "best_chi2": best.chi2,
            "best_chi2_red": best.evaluation.chi2_red,
            "gain": gain,
            "patterns": ev.patterns,
            "signature": (parent.evaluation.signature() if parent else ev.signature()).round(4).tolist(),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        trace.append(step)
        history.append({"action": step["action"], "gain": gain})
        return node

    start = policy.initial(space, source, budget.max_models)
    if space.size(start) > budget.max_models:
        raise ActionError(f"the initial configuration ({space.size(start):,} models) exceeds the budget")
    run(start, None, None)
    since_improvement = 0
    best_chi2 = nodes[0].chi2
    stop = ""
    while True:
        if models >= budget.max_models:
            stop = "model budget spent"
            break
        if len(trace) >= budget.max_steps:
            stop = "step budget spent"
            break
        if tokens >= budget.max_tokens:
            stop = "token budget spent"
            break
        if time.perf_counter() - t0 >= budget.max_seconds:
            stop = "time budget spent"
            break
        best = min(nodes, key=lambda n: n.chi2)
        if best.evaluation.good and since_improvement >= patience and _refined(best, nodes, space, memory):
            stop = "good fit, no longer improving"
            break
        # deep: expand the best node; wide: when it is exhausted or the search stalls, the next best
        order = sorted((n for n in nodes if not n.exhausted), key=lambda n: n.chi2)
        if not order:
            stop = "no proposal left"
            break
        if since_improvement < patience or len(order) == 1:
            node = order[0]
        else:  # stalled: the least-expanded of the best few nodes, so every promising branch gets a turn
            node = min(order[:5], key=lambda n: (n.expansions, n.chi2))
        node.expansions += 1
        if node.proposals is None:
            hints = knowledge.hints(node.evaluation) if knowledge is not None else []
            ctx = ProposalContext(
                space,
                source,
                node.state,
                node.evaluation,
                history[-8:],
                hints,
                budget.max_models - models,
                node.execution.alternatives,
            )
            node.proposals = list(policy.propose(ctx))
            tokens += int(getattr(policy, "last_tokens", 0))
        child_state = None
        while node.proposals:
            action = node.proposals.pop(0)
            try:
                cap = min(budget.max_models_per_step, budget.max_models - models)
                new = apply_action(space, node.state, action, node.execution.best_model, max_models=max(cap, 1))
            except ActionError:
                rejected += 1
                continue
            if new.key in memory:
                continue
            child_state = new
            break
        if child_state is None:
            node.exhausted = True
            continue
        child = run(child_state, node, action)
        if child.chi2 < best_chi2 * (1 - IMPROVEMENT):
            since_improvement = 0
        else:
            since_improvement += 1
        best_chi2 = min(best_chi2, child.chi2)
    best = min(nodes, key=lambda n: n.chi2)
    anomaly, reason = _anomaly(best.evaluation)
    return SearchResult(
        source,
        nodes,
        best,
        trace,
        models,
        len(trace),
        tokens,
        stop,
        anomaly,
        reason,
        rejected,
        time.perf_counter() - t0,
        getattr(policy, "name", "policy"),
    )


def _refined(best: Node, nodes: list[Node], space: SearchSpace, memory: set[str]) -> bool:
    """Whether the neighbourhood of the best model has been searched (its zoom was run)."""
    if best.action is not None and best.action.type == "zoom":
        return True
    try:
        zoomed = apply_action(space, best.state, Action("zoom", width=1), best.execution.best_model, max_models=10**12)
    except ActionError:
        return True  # zooming changes nothing: already as fine as the ladders go
    return zoomed.key in memory


def _anomaly(ev: Evaluation) -> tuple[bool, str]:
    if not np.isfinite(ev.chi2_red):
        return True, "no model fits at all"
    if ev.chi2_red > ANOMALY_CHI2_RED:
        bad = [f"{k} {v['mean']:+.1f} sigma" for k, v in ev.regimes.items() if v["n"] and abs(v["mean"]) >= 2]
        return True, (
            f"best reduced chi2 {ev.chi2_red:.1f} > {ANOMALY_CHI2_RED:g}; unexplained: "
            f"{', '.join(bad) or 'scatter across all regimes'}"
        )
    if ev.plausibility:
        return True, "; ".join(ev.plausibility)
    return False, ""


def hints_from(records: list[dict[str, Any]]) -> list[KnowledgeHint]:
    return [KnowledgeHint(**r) for r in records]
