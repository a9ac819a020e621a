"""A real language model in the loop: Gemma 3 270M (base model, PyPI GGUF) served by llama.cpp's
``llama-server`` (built from PyPI's source package into the cache on first run), called as an
OpenAI-compatible endpoint and through a real Triton with the TensorRT-LLM ensemble's contract.
A model this small cannot be expected to propose well; these tests check that constrained decoding
makes its replies parse, that token counts are the model's own and budgets hold, and that nothing it
writes can run outside the allow-list."""

from __future__ import annotations

import time

import pytest

from mephisto_sed.agents.policy import ExpertPolicy
from mephisto_sed.agents.search import Budget, search
from mephisto_sed.llm import LLMError, OpenAIBackend, Resilient, TritonBackend
from mephisto_sed.llm.backends import ServerTokenizer
from mephisto_sed.llm.llm_policy import LLMPolicy
from mephisto_sed.llm.local_llama import MODEL_NAME, LlamaServer
from mephisto_sed.llm.scripted import LlamaTriton

from .conftest import BROAD_BANDS
from .test_agents import BASE, _mock, _space


@pytest.fixture(scope="module")
def llama_url(tmp_path_factory):
    with LlamaServer(tmp_path_factory.mktemp("llama") / "llama-server.log", context=4096) as url:
        yield url


@pytest.fixture
def ran_modules(monkeypatch):
    """Every configuration a search actually ran (its modules), seen at the model grid."""
    from mephisto_sed.agents import execute as execute_mod

    ran: list[tuple[str, ...]] = []
    real = execute_mod.ModelGrid

    class Spy(real):  # type: ignore[misc, valid-type]
        def __init__(self, cfg, bands):
            ran.append(tuple(cfg.modules))
            super().__init__(cfg, bands)

    monkeypatch.setattr(execute_mod, "ModelGrid", Spy)
    return ran


def _llm_steps(trace: list[dict]) -> int:
    return sum(s["rule"].startswith("llm:") for s in trace)


@pytest.mark.parametrize("mode", ["choose", "free"])
def test_constrained_replies_parse_and_tokens_are_the_models_own(llama_url, ran_modules, mode):
    space = _space()
    allowed = set(space.ladders) | {"redshifting"}
    backend = OpenAIBackend(llama_url, MODEL_NAME, timeout=600)
    budget = Budget(max_models=25_000, max_tokens=8_000, max_steps=12, max_seconds=1_800)  # a busy machine
    policies = []
    for seed in (2, 5, 7):
        src, _ = _mock(BASE, BROAD_BANDS, seed=seed)
        policy = LLMPolicy([Resilient(backend, retries=0)], mode=mode)
        res = search(src, space, policy, budget)
        s = policy.stats
        why = [t["rule"] for t in res.trace if t["rule"].startswith("fallback")][:1]
        assert s.calls >= 1 and s.overruns == 0 and not s.estimated_tokens, why  # the model's own counts
        assert res.tokens == s.prompt_tokens + s.completion_tokens <= budget.max_tokens
        policies.append((policy, res))
    calls = sum(p.stats.calls for p, _ in policies)
    parsed = sum(p.stats.parsed for p, _ in policies)
    assert calls >= 4 and parsed / calls >= 0.95, f"{parsed} of {calls} replies parsed"
    assert all(set(m) <= allowed for m in ran_modules)  # whatever it wrote, only allowed modules ran
    if mode == "choose":  # a choice is always one of the expert's valid candidates
        assert sum(_llm_steps(r.trace) for _, r in policies) >= 1


def test_a_token_budget_is_never_overrun(llama_url):
    """A budget of 1,500 tokens holds one call of ~950 prompt tokens; the next is not made."""
    src, _ = _mock(BASE, BROAD_BANDS, seed=2)
    policy = LLMPolicy([Resilient(OpenAIBackend(llama_url, MODEL_NAME, timeout=600), retries=0)], mode="choose")
    res = search(src, _space(), policy, Budget(max_models=25_000, max_tokens=1_500, max_steps=12, max_seconds=1_800))
    s = policy.stats
    assert s.calls == 1 and 900 < res.tokens <= 1_500 and not s.estimated_tokens
    assert s.fallback_reasons.get("token budget", 0) >= 1
    assert any(t["rule"].startswith("fallback: token budget") for t in res.trace)


def test_counts_match_the_servers_usage_and_a_call_is_cancelled_at_its_deadline(llama_url):
    backend = OpenAIBackend(llama_url, MODEL_NAME, timeout=600)
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a galaxy."}]
    counted = backend.count_tokens(messages)
    reply = backend.complete(messages, max_tokens=12)
    assert counted.exact and counted.n == reply.prompt_tokens and not reply.estimated
    assert 1 <= reply.completion_tokens <= 12
    t0 = time.perf_counter()
    with pytest.raises(LLMError, match="within"):
        backend.complete(messages * 20, max_tokens=2_000, temperature=1.0, timeout=0.3)
    assert time.perf_counter() - t0 < 10
    assert backend.complete(messages, max_tokens=4).completion_tokens >= 1  # the server is still serving


def test_an_unconstrained_base_model_does_no_harm(llama_url, ran_modules):
    """Without a schema the base model mostly rambles: every reply is refused or filtered, the
    expert carries the search, and nothing outside the allow-list runs."""
    space = _space()
    allowed = set(space.ladders) | {"redshifting"}
    src, _ = _mock(BASE, BROAD_BANDS, seed=2)
    policy = LLMPolicy([Resilient(OpenAIBackend(llama_url, MODEL_NAME, timeout=600), retries=0)], constrained=False)
    budget = Budget(max_models=20_000, max_tokens=4_000, max_steps=10, max_seconds=1_800)
    res = search(src, space, policy, budget)
    expert = search(src, space, ExpertPolicy(), budget)
    assert policy.stats.calls >= 1 and res.tokens <= budget.max_tokens and policy.stats.overruns == 0
    assert all(set(m) <= allowed for m in ran_modules)
    assert all(t["rule"] for t in res.trace)  # every step says who proposed it, or why it fell back
    assert res.best.evaluation.chi2 <= expert.best.evaluation.chi2 * 1.5


def test_the_same_model_behind_a_real_triton_with_guided_decoding(llama_url, tmp_path):
    with LlamaTriton(llama_url, tmp_path / "triton.log") as url:
        backend = TritonBackend(url, "gemma", timeout=600, chat="gemma")
        assert backend.guided  # the entry model declares TensorRT-LLM's guided-decoding inputs
        tokenizer = ServerTokenizer(llama_url.removesuffix("/v1") + "/tokenize")
        messages = [{"role": "user", "content": 'Reply {"choice": N} with N from 0 to 2.'}]
        reply = backend.complete(messages, 16, schema={"type": "object", "properties": {"choice": {"enum": [0, 1, 2]}}})
        assert not reply.estimated and reply.prompt_tokens == tokenizer.count(backend.format(messages))
        src, _ = _mock(BASE, BROAD_BANDS, seed=2)
        policy = LLMPolicy([Resilient(backend, retries=0)], mode="choose")
        budget = Budget(max_models=20_000, max_tokens=2_500, max_steps=10, max_seconds=1_800)
        res = search(src, _space(), policy, budget)
        s = policy.stats
        assert s.calls >= 1 and s.parsed == s.calls and s.overruns == 0 and not s.estimated_tokens
        assert res.tokens <= budget.max_tokens and _llm_steps(res.trace) >= 1


def test_a_critique_from_the_real_model_is_a_valid_verdict(llama_url):
    from mephisto_sed.llm.roles import VERDICTS, critique

    src, _ = _mock(BASE, BROAD_BANDS, seed=2)
    res = search(src, _space(), ExpertPolicy(), Budget(max_models=10_000, max_steps=3))
    c = critique(OpenAIBackend(llama_url, MODEL_NAME, timeout=600), res.best.evaluation)
    assert c.verdict in VERDICTS and len(c.notes) <= 300 and c.tokens > 0
