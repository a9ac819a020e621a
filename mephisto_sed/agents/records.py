"""The records of a search — states, actions, sources, executions, evaluations, steps, nodes — as
JSON-safe dicts and back, from their own type declarations (pydantic v2 type adapters over the
search's dataclasses; the same library as the action schema and the knowledge records).

``dump(obj)`` gives plain Python (tuples where the type has them; ``json.dumps`` writes them as
lists, and infinities and NaN as the search has them); ``load(cls, data)`` validates and converts
back (lists to tuples and arrays, ints to floats), ignoring keys the type does not have, so older
records still read. The platform's payloads and the persisted search trees carry these.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter

__all__ = ["dump", "load"]

T = TypeVar("T")

# fields a record leaves out: a node's proposals, exhaustion and expansions change as the search
# goes on and live in the tree's header, not in the node's (written once) record
_LEFT_OUT: dict[str, set[str]] = {"Node": {"proposals", "exhausted", "expansions"}}
# optional fields written only when they say something (records stay as small as before)
_ONLY_WHEN_SET: dict[str, tuple[str, ...]] = {"Node": ("hints", "hints_missing"), "Step": ("knowledge",)}


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(cls: type) -> TypeAdapter[Any]:
    """One adapter per record type, built on first use (not at import: the CLI starts fast)."""
    if cls not in _ADAPTERS:
        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]


def dump(obj: Any) -> dict[str, Any]:
    """``obj`` (a dataclass of the search) as a dict of plain values."""
    name = type(obj).__name__
    d: dict[str, Any] = _adapter(type(obj)).dump_python(obj, exclude=_LEFT_OUT.get(name))
    for key in _ONLY_WHEN_SET.get(name, ()):
        if d.get(key) in (None, ""):
            d.pop(key, None)
    return d


def load(cls: type[T], data: Any) -> T:
    """A ``cls`` from ``dump``'s dict (or its JSON read back); raises pydantic's ValidationError,
    naming the field, on a malformed record."""
    return _adapter(cls).validate_python(data)
