"""The one typed action: what it accepts and refuses, and the schemas and prompt text generated from
it; the LLM settings read from the environment."""

from __future__ import annotations

import json

import pytest

from mephisto_sed.agents.action_schema import (
    ACTION_SCHEMA,
    ACTION_TYPES,
    describe_actions,
    reply_schema,
)
from mephisto_sed.agents.actions import ActionError, parse_action
from mephisto_sed.llm.backends import LLMError, messages_upper_bound
from mephisto_sed.llm.llm_policy import parse_choice
from mephisto_sed.settings import settings


def test_the_schema_and_the_prompt_come_from_the_model():
    assert ACTION_SCHEMA["additionalProperties"] is False
    assert ACTION_SCHEMA["properties"]["type"]["enum"] == list(ACTION_TYPES)
    assert ACTION_SCHEMA["properties"]["steps"]["maximum"] == 5
    assert ACTION_SCHEMA["properties"]["module"]["type"] == "string"  # omitted when unused, never null
    assert "anyOf" not in json.dumps(ACTION_SCHEMA)
    text = describe_actions()
    assert all(t in text for t in ACTION_TYPES) and "rationale" in text


def test_a_reply_schema_names_only_this_spaces_modules_and_parameters():
    s = reply_schema({"sfhdelayed": ["tau_main", "age_main"], "bc03": ["metallicity"]}, max_actions=3)
    item = s["properties"]["actions"]["items"]
    assert s["properties"]["actions"]["maxItems"] == 3 and s["properties"]["actions"]["minItems"] == 1
    assert item["properties"]["module"]["enum"] == ["bc03", "sfhdelayed"]
    assert item["properties"]["param"]["enum"] == ["age_main", "metallicity", "tau_main"]
    assert item["additionalProperties"] is False and item["properties"]["rationale"]["maxLength"] == 80


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"type": "exec"}, "unknown action type 'exec'"),
        ({"type": "zoom", "cmd": "ls"}, "unknown action field 'cmd'"),
        ({"type": "widen", "steps": "3"}, "action field 'steps'"),  # no coercion of strings
        ({"type": "widen", "steps": True}, "action field 'steps'"),  # nor of booleans
        ({"type": "set", "values": [float("nan")]}, "action field 'values.0'"),
        ({"type": "zoom", "around": {"x" * 81: 1.0}}, "action field 'around"),
    ],
)
def test_refusals_name_the_field(payload, message):
    with pytest.raises(ActionError, match=message.replace("(", r"\(")):
        parse_action(payload)


def test_choices_must_be_one_of_the_candidates_shown():
    assert parse_choice('{"choice": 2}', 3) == 2
    assert parse_choice('```json\n{"choice": 0}\n```', 1) == 0
    for bad in ('{"choice": 3}', '{"choice": -1}', '{"choice": "1"}', '{"choice": 1, "x": 2}', "two"):
        with pytest.raises(LLMError):
            parse_choice(bad, 3)


def test_the_token_bound_is_never_below_a_real_count():
    # Gemma 3's tokenizer counted 1,214-1,288 tokens for prompts of ~3,300 characters; the bound is
    # one token per UTF-8 byte, so it holds for any byte-level vocabulary
    messages = [{"role": "user", "content": "χ² = 1.5 " * 300}]
    assert messages_upper_bound(messages) >= len(messages[0]["content"].encode())


def test_llm_settings_are_read_and_checked(monkeypatch):
    monkeypatch.setenv("MEPHISTO_LLM_TIMEOUT", "12.5")
    monkeypatch.setenv("MEPHISTO_LLM_MODE", "choose")
    monkeypatch.setenv("MEPHISTO_LLM_CONCURRENCY", "2")
    cfg = settings()
    assert (cfg.llm_timeout, cfg.llm_mode, cfg.llm_concurrency, cfg.llm_retries) == (12.5, "choose", 2, 2)
    monkeypatch.setenv("MEPHISTO_LLM_MODE", "rm -rf")
    with pytest.raises(ValueError, match="MEPHISTO_LLM_MODE"):
        settings()
    monkeypatch.setenv("MEPHISTO_LLM_MODE", "free")
    monkeypatch.setenv("MEPHISTO_LLM_RETRIES", "many")
    with pytest.raises(ValueError, match="MEPHISTO_LLM_RETRIES: 'many' is not a int"):
        settings()
