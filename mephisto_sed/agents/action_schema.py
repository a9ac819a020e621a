"""The one typed definition of an action (pydantic v2), and what is generated from it.

``ActionModel`` validates every action — an LLM's reply, a knowledge record, a platform message —
and the same model generates: the JSON schema (``ACTION_SCHEMA``), the description of the action
space in an LLM's prompt (``describe_actions``), and the schemas that constrain an LLM's decoding
(``reply_schema`` specialised to one search space, ``choose_schema`` for picking a candidate by
index). Nothing here runs anything: what an action does is ``actions.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.json_schema import SkipJsonSchema

__all__ = [
    "ACTION_SCHEMA",
    "ACTION_TYPES",
    "ActionModel",
    "ChoiceModel",
    "ReplyModel",
    "choose_schema",
    "describe_actions",
    "reply_schema",
    "validation_message",
]

ActionType = Literal[
    "zoom",
    "scan",
    "refine",
    "widen",
    "shift",
    "narrow",
    "set",
    "add_module",
    "remove_module",
    "swap_module",
    "add_burst",
]
ACTION_TYPES: tuple[str, ...] = get_args(ActionType)

# what each action does, in the words the prompt uses (kept beside the type list so they cannot drift)
ACTION_DOCS: dict[str, str] = {
    "zoom": "every parameter at the best value ± width ladder steps (optionally around another model)",
    "scan": "one module's parameters over their whole ladders, the rest at best ± width",
    "refine": "one parameter at the best value ± width",
    "widen": "one parameter's range extended by steps (direction up, down or both)",
    "shift": "one parameter's values moved by steps (direction up or down)",
    "narrow": "one parameter fixed at its best value",
    "set": "one parameter set to the given ladder values",
    "add_module": "add a module (e.g. an AGN or a dust-emission component)",
    "remove_module": "remove a module",
    "swap_module": "replace a module by its alternative (to)",
    "add_burst": "add a recent burst to the delayed SFH",
}
assert set(ACTION_DOCS) == set(ACTION_TYPES)

Name = Annotated[str, StringConstraints(max_length=40)]
Qualified = Annotated[str, StringConstraints(max_length=80)]  # "module.param"
Number = float  # strict mode still takes an int for a float, never a bool or a string


class ActionModel(BaseModel):
    """One proposed change of a configuration. Unknown fields, wrong types and out-of-bound values
    are refused (strict: no coercion of "3" to 3 or of true to 1)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    type: ActionType = Field(description="what the action does")
    module: Name | SkipJsonSchema[None] = Field(None, description="a module in the search space")
    param: Name | SkipJsonSchema[None] = Field(None, description="one of the module's parameters")
    to: Name | SkipJsonSchema[None] = Field(None, description="swap_module: the module to swap to")
    direction: Literal["up", "down", "both"] | SkipJsonSchema[None] = Field(
        None, description="widen/shift: along the parameter's ladder"
    )
    steps: int = Field(1, ge=1, le=5, description="widen/shift: ladder steps")
    width: int = Field(1, ge=0, le=8, description="zoom/scan/refine: ladder steps either side of the best")
    values: list[Number] = Field(default_factory=list, max_length=30, description="set: ladder values")
    around: dict[Qualified, Number] = Field(
        default_factory=dict, max_length=16, description="zoom: centre as 'module.param': value"
    )
    couple: list[Qualified] = Field(
        default_factory=list, max_length=4, description="scan: 'module.param' names kept at best ± width"
    )
    rationale: Annotated[str, StringConstraints(max_length=500)] = Field("", description="why, briefly")


class ReplyModel(BaseModel):
    """An LLM's reply: actions, best first."""

    model_config = ConfigDict(extra="forbid", strict=True)

    actions: list[ActionModel] = Field(max_length=20)


class ChoiceModel(BaseModel):
    """A choose-mode reply: the index of one expert candidate."""

    model_config = ConfigDict(extra="forbid", strict=True)

    choice: int = Field(ge=0, le=63)


ACTION_SCHEMA: dict[str, Any] = ActionModel.model_json_schema()


def validation_message(exc: ValidationError) -> str:
    """pydantic's errors as one line that names each field ("action field 'steps': ...")."""
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(x) for x in e["loc"])
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown action field {loc!r}")
        elif loc == "type":
            parts.append(f"unknown action type {e.get('input')!r}; allowed: {', '.join(ACTION_TYPES)}")
        else:
            parts.append(f"action field {loc!r}: {e['msg']}")
    return "; ".join(parts)


def describe_actions() -> str:
    """The action space in a prompt: each type with what it does, then each field."""
    props = ACTION_SCHEMA["properties"]
    types = "; ".join(f"{t}: {d}" for t, d in ACTION_DOCS.items())
    fields = "; ".join(f"{k}: {v.get('description', '')}" for k, v in props.items() if k != "type")
    return f"Action types — {types}. Fields — {fields}."


def _lean_action(modules: dict[str, list[str]], rationale_chars: int) -> dict[str, Any]:
    """ACTION_SCHEMA specialised to one search space: module and parameter names are enums, the
    rationale short, the rarely useful fields dropped (a grammar a small model can follow)."""
    props = ACTION_SCHEMA["properties"]
    params = sorted({p for ps in modules.values() for p in ps})
    lean: dict[str, Any] = {
        "type": {"enum": list(ACTION_TYPES)},
        "module": {"enum": sorted(modules)},
        "param": {"enum": params} if params else props["param"],
        "direction": {"enum": ["up", "down", "both"]},
        "steps": {"type": "integer", "minimum": 1, "maximum": 5},
        "width": {"type": "integer", "minimum": 0, "maximum": 8},
        "rationale": {"type": "string", "maxLength": rationale_chars},
    }
    return {"type": "object", "additionalProperties": False, "required": ["type"], "properties": lean}


def reply_schema(modules: dict[str, list[str]], max_actions: int, rationale_chars: int = 80) -> dict[str, Any]:
    """The JSON schema that constrains a free-mode reply: ``{"actions": [...]}``, 1..max_actions."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["actions"],
        "properties": {
            "actions": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_actions,
                "items": _lean_action(modules, rationale_chars),
            }
        },
    }


def choose_schema(n_candidates: int) -> dict[str, Any]:
    """The schema of a choose-mode reply: ``{"choice": k}``, the index of one expert candidate."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["choice"],
        "properties": {"choice": {"type": "integer", "minimum": 0, "maximum": max(n_candidates - 1, 0)}},
    }
