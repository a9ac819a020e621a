"""The distiller: turns a finished search into rules ("when the UV is over-predicted, raising
E_BV_lines helped") and updates the evidence of existing ones."""

from __future__ import annotations

from typing import Any

import numpy as np

from .domain import Domain
from .evaluate import observed_levels
from .knowledge import KnowledgeBase, Rule
from .search import SearchResult, best_node

HELPED = 0.01  # a step helped when it cut the parent's χ² by at least 1%


def rules_from_search(result: SearchResult) -> list[Rule]:
    """One observation per (situation, action) step of the search."""
    out = []
    by_id = {n.id: n for n in result.nodes}
    domain = Domain.of(result.source)
    domains = [domain.as_list()] if domain is not None else []
    for step in result.trace:
        if step["parent"] is None or not step["action_data"] or step.get("rule") == "estimate":
            continue  # the first look, or a piece of the posterior box (no decision to learn from)
        parent = by_id[step["parent"]]
        gain = float(step["gain"])
        if not np.isfinite(gain):
            continue  # a step none of whose models fitted: no evidence either way (and no NaN stored)
        helped = gain >= HELPED
        patterns = ", ".join(p for p in parent.evaluation.patterns if p != "good_fit") or "no clear pattern"
        text = (
            f"When {patterns} (chi2_red {parent.evaluation.chi2_red:.1f}, z={result.source.redshift:.1f}), "
            f"'{step['action']}' {'helped' if helped else 'did not help'} "
            f"(chi2 {'-' if gain >= 0 else '+'}{abs(gain):.0%})."
        )
        action: dict[str, Any] = {k: v for k, v in step["action_data"].items() if k not in ("rationale", "rule")}
        out.append(
            Rule(
                signature=list(np.asarray(step["signature"], dtype=float)),
                action=action,
                text=text,
                tried=1,
                helped=int(helped),
                mean_gain=gain,
                mean_models=float(step["models"]),
                sources=[result.source.id],
                domains=list(domains),
            )
        )
    return out


def distill(result: SearchResult, kb: KnowledgeBase, words: Any | None = None) -> int:
    """Add what ``result`` teaches to ``kb``; returns the number of observations stored. ``words``
    (an LLM backend) rewrites the rules that helped in an astronomer's words."""
    rules = rules_from_search(result)
    for r in rules:
        if words is not None and r.helped:
            from ..llm.roles import rule_in_words

            r.text = rule_in_words(words, r.text, r.action)
        kb.add(r)
    if not result.anomaly and result.nodes:  # where the search ended: a prior for the next first looks
        first = result.nodes[0].evaluation
        kb.add_outcome(
            result.source.id,
            result.source.redshift,
            first.signature(),
            first_look_outcome(result),
            Domain.of(result.source),
            observed_levels(result.source),
        )
    return len(rules)


def first_look_outcome(result: SearchResult) -> dict[str, dict[str, Any]]:
    """The best model among the configurations with the first look's modules: what a later first
    look (always those modules) can be placed by. Where the search ended with a module added (an
    AGN, another attenuation law) the other parameters' best values shift to make room for it —
    a Little Red Dot's stellar reddening with a dominant AGN, say — and a first look without that
    module placed there starts worse than the even one (issue 17)."""
    modules = result.nodes[0].state.modules
    same = [n for n in result.nodes if n.state.modules == modules and np.isfinite(n.chi2)]
    return best_node(same).execution.best_model if same else result.best.execution.best_model
