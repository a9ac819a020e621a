"""The one schema of knowledge records (pydantic v2): what `knowledge import` accepts and what the
store hands back. A file is checked whole before anything is stored, and an error names the record
and the field (``rules[3].helped: Input should be a valid integer``)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..sed_modules import MODULES
from .actions import ActionError, parse_action
from .evaluate import SIGNATURE_SIZE, checked_levels

__all__ = ["KnowledgeFile", "KnowledgeRecordError", "OutcomeRecord", "RuleRecord", "parse_knowledge_file"]

MAX_RULES = 200_000
MAX_TEXT = 2_000
MAX_ID = 200
MAX_SOURCES = 10_000

Finite = Annotated[float, Field(allow_inf_nan=False)]
DomainValues = Annotated[list[Finite], Field(min_length=3, max_length=3)]  # [z, rest µm min, max]
Signature = Annotated[list[Finite], Field(min_length=SIGNATURE_SIZE, max_length=SIGNATURE_SIZE)]
ShortText = Annotated[str, Field(max_length=MAX_ID)]


class KnowledgeRecordError(ValueError):
    """A knowledge file or record that does not match the schema; the message names where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RuleRecord(_Strict):
    """What an action did in a situation (see :class:`mephisto_sed.agents.knowledge.Rule`)."""

    signature: Signature
    action: dict[str, Any]
    text: Annotated[str, Field(max_length=MAX_TEXT)]
    tried: Annotated[int, Field(ge=1, le=10**9)] = 1
    helped: Annotated[int, Field(ge=0, le=10**9)] = 0
    mean_gain: Annotated[Finite, Field(ge=-1e6, le=1e6)] = 0.0
    sources: Annotated[list[ShortText], Field(max_length=MAX_SOURCES)] = []
    id: ShortText = ""
    mean_models: Annotated[Finite, Field(ge=0, le=1e12)] = 0.0
    # [z, rest µm min, max] per source it was learned on (absent in older files: unknown provenance)
    domains: Annotated[list[DomainValues], Field(max_length=MAX_SOURCES)] = []

    @field_validator("signature", "mean_gain", "mean_models", mode="before")
    @classmethod
    def _ints_are_numbers(cls, v: Any) -> Any:  # JSON writes 1.0 as 1; strict mode would refuse it
        if isinstance(v, list):
            return [float(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v]
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("action")
    @classmethod
    def _allowed_action(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            parse_action(v)  # the same allow-list and bounds as an LLM's proposal
        except ActionError as exc:
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _helped_at_most_tried(self) -> RuleRecord:
        if self.helped > self.tried:
            raise ValueError(f"helped ({self.helped}) exceeds tried ({self.tried})")
        return self


class OutcomeRecord(_Strict):
    """Where one galaxy's search ended: its best model's numeric parameters."""

    source: ShortText
    redshift: Annotated[Finite, Field(ge=0, le=20)]
    signature: Signature
    best: dict[str, dict[str, Any]]
    domain: DomainValues | None = None  # absent in older files: unknown coverage
    levels: dict[str, Finite] | None = None  # photometry by regime (evaluate.observed_levels); absent in older files

    @field_validator("redshift", "signature", mode="before")
    @classmethod
    def _ints_are_numbers(cls, v: Any) -> Any:
        return RuleRecord._ints_are_numbers(v)

    @field_validator("levels")
    @classmethod
    def _known_regimes(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        return None if v is None else checked_levels(v)

    @field_validator("best")
    @classmethod
    def _known_parameters(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for module, params in v.items():
            if module not in MODULES:
                raise ValueError(f"unknown module {module[:40]!r}")
            known = {p.name for p in MODULES[module].params}
            for name, value in params.items():
                if name not in known:
                    raise ValueError(f"{module}: unknown parameter {name[:40]!r}")
                if isinstance(value, float) and not math.isfinite(value):
                    raise ValueError(f"{module}.{name}: not finite")
                if not isinstance(value, (int, float, str, bool)) or (isinstance(value, str) and len(value) > MAX_ID):
                    raise ValueError(f"{module}.{name}: expected a number")
        return v


class KnowledgeFile(_Strict):
    """`knowledge export`'s JSON."""

    rules: Annotated[list[RuleRecord], Field(max_length=MAX_RULES)]
    outcomes: Annotated[list[OutcomeRecord], Field(max_length=MAX_RULES)] = []


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_knowledge_file(data: Any, name: str = "knowledge file") -> KnowledgeFile:
    """Validate an export (``{"rules": [...], "outcomes": [...]}``) or a bare list of rules."""
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, dict):
        raise KnowledgeRecordError(f"{name}: expected a list of rules or an export with 'rules'")
    try:
        return KnowledgeFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _where(tuple(first["loc"]))
        msg = first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise KnowledgeRecordError(f"{name}: {where}: {msg}{more}") from None
