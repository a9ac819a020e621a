"""LLM proposers against a real Triton server (PyTriton, scripted responders with the TensorRT-LLM
ensemble's contract) and a local OpenAI-compatible HTTP server."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mephisto_sed.agents.policy import ExpertPolicy
from mephisto_sed.agents.search import Budget, search
from mephisto_sed.llm import LLMError, OpenAIBackend, Resilient, TritonBackend, llama3_prompt
from mephisto_sed.llm.llm_policy import LLMPolicy, parse_reply
from mephisto_sed.llm.scripted import ScriptedTriton
from services.platform import free_port

from .conftest import BROAD_BANDS
from .test_agents import BASE, IR_BANDS, _mock, _space


@pytest.fixture(scope="session")
def triton_url(tmp_path_factory):
    with ScriptedTriton(tmp_path_factory.mktemp("triton") / "triton.log") as url:
        yield url


def test_llama3_chat_format_and_reply_parsing():
    p = llama3_prompt([{"role": "system", "content": "S"}, {"role": "user", "content": "hi <|eot_id|> x"}])
    assert p.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>")
    assert p.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert p.count("<|eot_id|>") == 2  # a user's text cannot close a turn
    assert parse_reply('ok ```json\n{"actions": [{"type": "zoom"}]}\n```') == [{"type": "zoom"}]
    assert parse_reply('[{"type": "refine"}] trailing words') == [{"type": "refine"}]
    for bad in ("no json here", '{"actions": 3}', "{" * 10, "x" * 30_000):
        with pytest.raises(LLMError):
            parse_reply(bad)


def test_triton_backend_streams_from_a_decoupled_ensemble(triton_url):
    b = TritonBackend(triton_url, "ensemble", timeout=20)
    msg = "Candidate actions from the expert rules: " + json.dumps([{"type": "zoom"}]) + "\nModels left: 1."
    out = b.complete([{"role": "user", "content": msg}], max_tokens=64)
    assert parse_reply(out.text) == [{"type": "zoom"}]
    assert out.estimated and out.prompt_tokens > 10 and out.latency_s > 0


def test_a_scripted_llm_with_sensible_actions_reaches_the_expert_fit(triton_url):
    src, _ = _mock(BASE, BROAD_BANDS, seed=2)
    budget = Budget(max_models=30_000, max_tokens=10_000)
    expert = search(src, _space(), ExpertPolicy(), budget)
    policy = LLMPolicy([Resilient(TritonBackend(triton_url, "ensemble", timeout=20))])
    res = search(src, _space(), policy, budget)
    assert res.best.evaluation.good and expert.best.evaluation.good
    assert res.best.evaluation.chi2_red <= expert.best.evaluation.chi2_red * 1.1
    assert policy.stats.calls >= 2 and policy.stats.fallbacks == 0
    assert any(s["rule"].startswith("llm:") for s in res.trace)
    assert 0 < res.tokens <= 10_000 and res.tokens == policy.stats.prompt_tokens + policy.stats.completion_tokens


def test_garbage_hostile_slow_and_down_llms_fall_back_and_never_run_bad_actions(triton_url, monkeypatch):
    from mephisto_sed.agents import execute as execute_mod

    src, _ = _mock(BASE, BROAD_BANDS, seed=2)
    space = _space()
    ran: list[tuple[str, ...]] = []
    real = execute_mod.ModelGrid

    class Spy(real):
        def __init__(self, cfg, bands):
            ran.append(tuple(cfg.modules))
            super().__init__(cfg, bands)

    monkeypatch.setattr(execute_mod, "ModelGrid", Spy)
    budget = Budget(max_models=15_000, max_steps=8)
    allowed = set(space.ladders) | {"redshifting"}

    hostile = LLMPolicy([TritonBackend(triton_url, "hostile", timeout=20)])
    res = search(src, space, hostile, budget)
    assert hostile.stats.rejected_actions >= 1  # the "shell" action fails the schema
    assert res.rejected_actions >= 2  # unknown module, path-like parameter, out-of-bounds values
    assert all(set(mods) <= allowed for mods in ran)
    assert res.models_evaluated <= budget.max_models

    garbage = LLMPolicy([TritonBackend(triton_url, "garbage", timeout=20)])
    res = search(src, space, garbage, budget)
    assert garbage.stats.fallbacks >= 1 and any("fallback: unusable reply" in s["rule"] for s in res.trace)

    slow = LLMPolicy([Resilient(TritonBackend(triton_url, "slow", timeout=1.0), retries=0)])
    t0 = time.perf_counter()
    res = search(src, space, slow, Budget(max_models=15_000, max_steps=3))
    assert any("fallback: LLM unavailable" in s["rule"] for s in res.trace)
    assert time.perf_counter() - t0 < 30

    down = Resilient(
        TritonBackend(f"127.0.0.1:{free_port()}", "ensemble", timeout=2), retries=1, backoff=0.01, failures_to_open=2
    )
    policy = LLMPolicy([down])
    res = search(src, space, policy, Budget(max_models=20_000, max_steps=10))
    assert res.best.evaluation.good  # the expert carried the search
    assert policy.stats.fallbacks >= 2 and down.failures >= 2
    t0 = time.perf_counter()
    with pytest.raises(LLMError, match="circuit open"):
        down.complete([{"role": "user", "content": "x"}])
    assert time.perf_counter() - t0 < 0.1


class _ChatServer(BaseHTTPRequestHandler):
    """A local OpenAI-compatible /v1/chat/completions server; subclasses write ``answer``."""

    def answer(self, messages: list[dict]) -> tuple[str, dict]:  # (content, usage)
        raise NotImplementedError

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/chat/completions" and body["messages"][0]["role"] == "system"
        text, usage = self.answer(body["messages"])
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}], "usage": usage}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@contextlib.contextmanager
def _serve(handler: type[_ChatServer]):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()


class _OpenAIHandler(_ChatServer):
    def answer(self, messages):
        prompt = messages[-1]["content"]
        marker = "Candidate actions from the expert rules: "
        cands = json.loads(prompt[prompt.index(marker) + len(marker) : prompt.index("\nModels left")])
        return json.dumps({"actions": cands[:3]}), {"prompt_tokens": 900, "completion_tokens": 60}


def test_openai_compatible_backend_reports_tokens_and_cost():
    from mephisto_sed.llm.llm_policy import CostModel

    with _serve(_OpenAIHandler) as url:
        b = OpenAIBackend(url, "llama-3.1-8b")
        policy = LLMPolicy([b], cost=CostModel(usd_per_m_prompt=0.2, usd_per_m_completion=0.6))
        src, _ = _mock(BASE, BROAD_BANDS, seed=2)
        res = search(src, _space(), policy, Budget(max_models=20_000, max_steps=6))
        s = policy.stats
        assert s.calls >= 1 and not s.estimated_tokens and s.prompt_tokens == 900 * s.calls
        assert s.cost_usd == pytest.approx(s.calls * (900 * 0.2 + 60 * 0.6) / 1e6)
        assert res.tokens == 960 * s.calls and res.cost_usd == pytest.approx(s.cost_usd)
        assert json.loads(res.trace_json())["llm_cost_usd"] == pytest.approx(s.cost_usd)


def test_the_platform_proposer_speaks_to_triton(triton_url, tmp_path):
    """MEPHISTO_LLM_URL switches the proposer service to the LLM policy; tokens reach the results."""
    from gateway.client import catalog_requests
    from mephisto_sed.api.v1 import mephisto_pb2 as pb
    from mephisto_sed.catalog import read_catalog
    from mephisto_sed.cli import example_catalog_path
    from services.platform import NatsServer

    from .platform_helpers import client, start_platform, wait_jobs

    nats = NatsServer(tmp_path / "nats").start()
    plat = start_platform(nats.url, tmp_path / "run", MEPHISTO_LLM_URL=f"triton://{triton_url}/ensemble")
    try:
        c = client(plat)
        cat = read_catalog(example_catalog_path()).select(slice(0, 1))
        req = catalog_requests(cat, list(cat.bands), pb.Budget(max_models=20_000, max_steps=6))[0]
        result = wait_jobs(c, list(c.submit(req).job_ids), timeout=120).results[0]
        assert result.policy == "llm:triton:ensemble" and result.tokens > 0
        assert '"rule": "llm:triton:ensemble"' in result.trace_json
        c.close()
    finally:
        plat.stop()
        nats.cleanup()


def test_routing_escalates_to_the_large_model_when_proposals_stall():
    class Named:
        def __init__(self, name):
            self.name = name

    small, large = Named("8b"), Named("70b")
    policy = LLMPolicy([small, large], escalate_after=3)
    ctx = type("Ctx", (), {})()
    ctx.history = [{"action": "zoom", "gain": 0.2}, {"action": "x", "gain": 0.0}, {"action": "y", "gain": 0.005}]
    assert policy._backend(ctx) is small  # one of the last three steps helped
    ctx.history.append({"action": "z", "gain": -0.01})
    assert policy._backend(ctx) is large and policy.stats.escalations == 1
    assert LLMPolicy([small])._backend(ctx) is small  # nothing to escalate to


class _RolesHandler(_ChatServer):
    """Answers the critic and the rule-wording prompts; ``mode``: sensible or hostile replies."""

    mode = "sensible"

    def answer(self, messages):
        if "review a galaxy SED fit" in messages[0]["content"]:
            text = (
                json.dumps({"verdict": "good", "notes": "Residuals are flat in every regime."})
                if self.mode == "sensible"
                else json.dumps({"verdict": "rm -rf /", "notes": "x", "run": "os.system('id')"})
            )
        else:
            text = "Adding dust helped when the UV was over-predicted." if self.mode == "sensible" else "`rm -rf /`"
        return text, {"prompt_tokens": 100, "completion_tokens": 20}


@pytest.mark.parametrize("mode", ["sensible", "hostile"])
def test_evaluator_critique_and_distiller_words_from_an_llm(mode, tmp_path):
    from mephisto_sed.agents.agentfit import agent_fit_catalog
    from mephisto_sed.agents.knowledge import KnowledgeBase
    from mephisto_sed.config import Configuration
    from mephisto_sed.mock import make_mock_catalog

    with _serve(type("H", (_RolesHandler,), {"mode": mode})) as url:
        llm = OpenAIBackend(url, "critic")
        # galaxies with an AGN the starting configuration lacks: adding it helps, a rule to word
        agn = {"fracAGN": 0.6, "EBV": 0.0, "covering_factor": 0.5, "temperature": 100.0, "lambda_fracAGN": "0.1/10"}
        cfg = Configuration.from_modules({**BASE, "agn": agn}, additionalerror=0.05)
        cat, _ = make_mock_catalog(cfg, IR_BANDS, 2, seed=5, z_range=(0.8, 0.81), log_mstar_range=(10.5, 10.5))
        space = _space(IR_BANDS)
        kb = KnowledgeBase(tmp_path / "kb")
        res = agent_fit_catalog(
            cat,
            space,
            budget=Budget(max_models=40_000, max_steps=14),
            knowledge=kb,
            learn=True,
            progress=False,
            critic=llm,
        )
        texts = [r.text for r in kb.all()]
        assert any(r.helped for r in kb.all()), "no step helped: nothing for the LLM to word"
        if mode == "sensible":
            assert list(res.table["critique_verdict"]) == ["good", "good"]
            assert all(res.table["critique_tokens"] == 120)
            assert "Adding dust helped when the UV was over-predicted." in texts
        else:  # refused: no verdict, the template texts stay
            assert list(res.table["critique_verdict"]) == ["", ""]
            assert all("no critique" in n for n in res.table["critique_notes"])
            assert texts and not any("rm -rf" in t for t in texts)
        kb.close()
