"""Knowledge in Qdrant: rules learned from finished searches, retrieved by situation.

An entry holds a situation signature (numeric: regime residuals, redshift, colours, χ²), the
rule in words, the action it recommends, its evidence (times tried, times helped, mean χ²
gain) and provenance (which sources, and the domain of each: redshift and rest-frame coverage,
``domain.py``). Asked with a galaxy's domain, retrieval keeps only what was learned on alike
galaxies; a rule of unknown provenance (an older store) is not alike anything. ``qdrant-client`` runs in local mode by default (a folder,
or ``:memory:``); ``QDRANT_URL`` selects a server. Near-duplicate rules merge their evidence.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from pydantic import ValidationError

from ..sed_modules import ConfigError
from ..settings import settings
from .domain import Domain
from .evaluate import SIGNATURE_SIZE, Evaluation, shape_distance
from .knowledge_records import KnowledgeRecordError, RuleRecord, parse_knowledge_file
from .policy import KnowledgeHint, Outcomes, action_key

__all__ = ["KnowledgeBase", "KnowledgeInUse", "KnowledgeRecordError", "Rule"]
log = logging.getLogger(__name__)

COLLECTION = "mephisto_rules"
OUTCOMES = "_outcomes"  # suffix of the collection of finished searches' best models
OUTCOME_DZ = 0.15  # outcomes within this Δz/(1+z) of a source inform its first look
MERGE_SIMILARITY = 0.97  # same action and a signature this close: the same rule
NEAREST_OUTCOMES = 5  # the fewest outcomes the SED-shape selection keeps (policy.MIN_OUTCOMES: enough to place)


@dataclass
class Rule:
    signature: list[float]
    action: dict[str, Any]
    text: str
    tried: int = 1
    helped: int = 0
    mean_gain: float = 0.0
    sources: list[str] = field(default_factory=list)
    id: str = ""
    mean_models: float = 0.0  # models the action spent, on average (its cost)
    domains: list[list[float]] = field(default_factory=list)  # [z, rest µm min, max] of each source

    def applies_to(self, domain: Domain) -> bool:
        return any(Domain.from_list(d).alike(domain) for d in self.domains)

    @property
    def key(self) -> str:
        return action_key(self.action)


class KnowledgeInUse(ConfigError):
    """The local Qdrant folder is held by another process (local mode allows one)."""


class KnowledgeBase:
    def __init__(self, path: str | Path | None = None, url: str | None = None, collection: str = COLLECTION):
        from qdrant_client import QdrantClient, models

        self._models = models
        # an explicit ":memory:" stays in memory whatever QDRANT_URL names (tests, throwaway runs)
        url = None if str(path) == ":memory:" else (url or settings().qdrant_url)
        if url:
            self.client = QdrantClient(url=url)
            self.where = url
        elif path is None or str(path) == ":memory:":
            self.client = QdrantClient(location=":memory:")
            self.where = ":memory:"
        else:
            Path(path).mkdir(parents=True, exist_ok=True)
            try:
                self.client = QdrantClient(path=str(path))  # local mode: one process owns the folder
            except RuntimeError as exc:
                if "already accessed" not in str(exc):
                    raise
                raise KnowledgeInUse(
                    f"knowledge base {path} is open in another process (a running `mephisto-sed up`?): "
                    "stop it, give --knowledge another folder, or --no-knowledge"
                ) from None
            self.where = str(path)
        self.collection = collection
        self.outcomes_collection = collection + OUTCOMES
        for name in (collection, self.outcomes_collection):
            if not self.client.collection_exists(name):
                self.client.create_collection(
                    name, vectors_config=models.VectorParams(size=SIGNATURE_SIZE, distance=models.Distance.COSINE)
                )

    def close(self) -> None:
        self.client.close()

    def count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)

    def count_outcomes(self) -> int:
        return int(self.client.count(self.outcomes_collection, exact=True).count)

    @staticmethod
    def _vector(sig: np.ndarray | list[float]) -> list[float]:
        v = np.asarray(sig, dtype=float)
        if v.size != SIGNATURE_SIZE or not np.all(np.isfinite(v)):
            raise ValueError(f"a signature is {SIGNATURE_SIZE} finite numbers")
        if not np.any(v):
            v = v + 1e-6  # cosine needs a direction
        return v.tolist()

    def add(self, rule: Rule) -> Rule:
        """Insert, or merge into a near-duplicate (same action, signature similarity ≥ 0.97)."""
        m = self._models
        hits = self.client.query_points(
            self.collection,
            query=self._vector(rule.signature),
            limit=1,
            with_payload=True,
            with_vectors=True,  # the merged signature is the tried-weighted mean of both
            query_filter=m.Filter(must=[m.FieldCondition(key="key", match=m.MatchValue(value=rule.key))]),
        ).points
        old = self._rule(hits[0]) if hits and hits[0].score >= MERGE_SIMILARITY else None
        if old is not None:
            tried = old.tried + rule.tried
            merged = Rule(
                signature=(
                    (np.asarray(old.signature) * old.tried + np.asarray(rule.signature) * rule.tried) / tried
                ).tolist(),
                action=old.action,
                text=rule.text if rule.helped > old.helped else old.text,
                tried=tried,
                helped=old.helped + rule.helped,
                mean_gain=(old.mean_gain * old.tried + rule.mean_gain * rule.tried) / tried,
                mean_models=(old.mean_models * old.tried + rule.mean_models * rule.tried) / tried,
                sources=sorted(set(old.sources) | set(rule.sources))[:200],
                id=old.id,
                domains=_union(old.domains, rule.domains),
            )
            self._put(merged)
            return merged
        rule.id = rule.id or str(uuid.uuid4())
        self._put(rule)
        return rule

    def _put(self, rule: Rule) -> None:
        payload = asdict(rule)
        payload["key"] = rule.key
        payload.pop("signature")
        self.client.upsert(
            self.collection,
            points=[self._models.PointStruct(id=rule.id, vector=self._vector(rule.signature), payload=payload)],
        )

    @staticmethod
    def _rule(point: Any) -> Rule | None:
        """The stored rule, or None (logged) when its record breaks the schema: a store written
        by another version or by hand must not break every later search."""
        p = dict(point.payload or {})
        p.pop("key", None)
        p["signature"] = list(point.vector) if point.vector is not None else [0.0] * SIGNATURE_SIZE
        try:
            return Rule(**RuleRecord.model_validate(p).model_dump())
        except ValidationError as exc:
            log.warning("knowledge: rule %s skipped, it breaks the schema: %s", point.id, exc.errors()[0]["msg"])
            return None

    def search(
        self, signature: np.ndarray | list[float], limit: int = 8, action_type: str | None = None, min_tried: int = 0
    ) -> list[tuple[Rule, float]]:
        """Rules for the most similar situations, optionally of one action type."""
        m = self._models
        must = []
        if action_type:
            must.append(m.FieldCondition(key="action.type", match=m.MatchValue(value=action_type)))
        if min_tried:
            must.append(m.FieldCondition(key="tried", range=m.Range(gte=min_tried)))
        res = self.client.query_points(
            self.collection,
            query=self._vector(signature),
            limit=limit,
            with_payload=True,
            with_vectors=True,
            query_filter=m.Filter(must=must) if must else None,
        ).points
        return [(r, float(p.score)) for p in res if (r := self._rule(p)) is not None]

    def hints(self, evaluation: Evaluation, limit: int = 12, domain: Domain | None = None) -> list[KnowledgeHint]:
        """Rules for the most similar situations; with ``domain``, only those learned on alike galaxies."""
        found = self.search(evaluation.signature(), limit=limit if domain is None else limit * 4)
        if domain is not None:
            found = [(r, s) for r, s in found if r.applies_to(domain)][:limit]
        return [KnowledgeHint(r.action, s, r.tried, r.helped, r.mean_gain, r.text, r.mean_models) for r, s in found]

    # -- outcomes: where finished searches ended, a prior for the next galaxies' first look ------
    def add_outcome(
        self,
        source_id: str,
        redshift: float,
        signature: np.ndarray | list[float],
        best: dict[str, dict[str, Any]],
        domain: Domain | None = None,
        levels: dict[str, float] | None = None,
    ) -> None:
        """Keep the best model a search of ``source_id`` ended with (one entry per source), with
        the galaxy's photometry by regime (``evaluate.observed_levels``) when given."""
        values = {
            m: {p: float(v) for p, v in params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            for m, params in best.items()
        }
        point_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mephisto-outcome:{source_id}"))
        payload: dict[str, Any] = {"source": str(source_id), "redshift": float(redshift), "best": values}
        if domain is not None:
            payload["domain"] = domain.as_list()
        if levels:
            payload["levels"] = {k: float(v) for k, v in levels.items()}
        self.client.upsert(
            self.outcomes_collection,
            points=[self._models.PointStruct(id=point_id, vector=self._vector(signature), payload=payload)],
        )

    def outcomes(
        self,
        redshift: float,
        limit: int = 200,
        domain: Domain | None = None,
        levels: dict[str, float] | None = None,
    ) -> Outcomes:
        """The best values galaxies at a similar redshift (up to ``limit`` of them) ended with:
        module -> parameter -> values; with ``domain``, only galaxies of alike coverage (one of
        unknown coverage is not alike); with ``levels`` (the new galaxy's
        ``evaluate.observed_levels``), only the half of those nearest to it in SED shape
        (``evaluate.shape_distance``; at least ``NEAREST_OUTCOMES``). Issue 17: on the Little Red
        Dots and COSMOS 2.75 < z < 3 a first look placed by the nearer half started closer to the
        best fit than one placed by all alike galaxies, most of all where the population is
        varied (an LRD at χ² 6.7 against 16.3)."""
        m = self._models
        dz = OUTCOME_DZ * (1 + redshift)
        window = m.Filter(must=[m.FieldCondition(key="redshift", range=m.Range(gte=redshift - dz, lte=redshift + dz))])
        points, _ = self.client.scroll(self.outcomes_collection, scroll_filter=window, limit=limit, with_payload=True)
        payloads = [p.payload or {} for p in points]
        if domain is not None:
            payloads = [p for p in payloads if "domain" in p and Domain.from_list(p["domain"]).alike(domain)]
        if levels:  # a stable sort: of equally near ones the stored order decides (none given: all alike)
            payloads = sorted(payloads, key=lambda p: shape_distance(levels, p.get("levels") or {}))
            payloads = payloads[: max(NEAREST_OUTCOMES, len(payloads) // 2)]
        out: Outcomes = {}
        for payload in payloads:
            for module, params in payload["best"].items():
                for p, v in params.items():
                    out.setdefault(module, {}).setdefault(p, []).append(float(v))
        return out

    def _all_outcomes(self) -> list[dict[str, Any]]:
        out, offset = [], None
        while True:
            points, offset = self.client.scroll(
                self.outcomes_collection, limit=256, offset=offset, with_payload=True, with_vectors=True
            )
            out += [{**(p.payload or {}), "signature": list(cast(list[float], p.vector))} for p in points]
            if offset is None:
                return out

    def all(self) -> list[Rule]:
        out, offset = [], None
        while True:
            points, offset = self.client.scroll(
                self.collection, limit=256, offset=offset, with_payload=True, with_vectors=True
            )
            out += [r for p in points if (r := self._rule(p)) is not None]
            if offset is None:
                return out

    def export(self, path: str | Path) -> int:
        """Rules and outcomes as JSON; returns the number of rules."""
        rules = self.all()
        data = {"rules": [asdict(r) for r in rules], "outcomes": self._all_outcomes()}
        Path(path).write_text(json.dumps(data, indent=1))
        return len(rules)

    def import_(self, path: str | Path) -> int:
        """Rules (and outcomes) from :meth:`export`'s JSON, or a bare list of rules; returns the
        number of rules. The whole file is checked against the schema first: all or nothing."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KnowledgeRecordError(f"{path}: cannot read JSON: {exc}") from None
        parsed = parse_knowledge_file(data, str(path))
        for o in parsed.outcomes:
            domain = Domain.from_list(o.domain) if o.domain else None
            self.add_outcome(o.source, o.redshift, o.signature, o.best, domain, o.levels)
        for r in parsed.rules:
            self.add(Rule(**r.model_dump()))
        return len(parsed.rules)


def _union(a: list[list[float]], b: list[list[float]], cap: int = 200) -> list[list[float]]:
    """The domains of both, each once, at most ``cap`` (as the sources are)."""
    out: list[list[float]] = []
    for d in ([float(x) for x in d] for d in [*a, *b]):
        if d not in out:
            out.append(d)
    return out[:cap]
