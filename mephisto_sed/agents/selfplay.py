"""Self-play: search a training set, distilling every finished search into the knowledge base."""

from __future__ import annotations

from tqdm.auto import tqdm

from .distill import distill
from .execute import Source
from .knowledge import KnowledgeBase
from .policy import Policy
from .search import Budget, SearchResult, search
from .space import SearchSpace


def selfplay(
    sources: list[Source],
    space: SearchSpace,
    policy: Policy,
    kb: KnowledgeBase,
    budget: Budget | None = None,
    use_knowledge: bool = True,
    progress: bool = True,
    seed: int = 0,
) -> list[SearchResult]:
    results = []
    for src in tqdm(sources, desc="self-play", unit="src", disable=not progress):
        res = search(src, space, policy, budget, knowledge=kb if use_knowledge else None, seed=seed)
        distill(res, kb)
        results.append(res)
    return results
