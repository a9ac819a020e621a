"""triton_models/: every config.pbtxt parses with Triton's own model-config protobuf (shipped in
tritonclient), the ensembles are wired consistently, and their contract is what our client sends."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from google.protobuf import text_format

from mephisto_sed.llm.backends import TRITON_INPUTS, TRITON_OUTPUT

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="tritonclient is in dev")
ROOT = Path(__file__).resolve().parents[1] / "triton_models"
REPOS = ["astrosage-8b", "llama-3.1-70b"]
FILL = {"decoupled_mode": "true", "max_queue_delay_microseconds": "0"}


def load(path: Path) -> model_config_pb2.ModelConfig:
    """Fill unquoted ${placeholders} as fill_template.py would, then parse."""
    text = re.sub(r"(?<!\")\$\{(\w+)\}", lambda m: FILL.get(m.group(1), "1"), path.read_text())
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def test_generated_configs_are_current(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("gen", ROOT / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    committed = {p: p.read_text() for p in ROOT.rglob("config.pbtxt")}
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    fresh = {p.relative_to(tmp_path): p.read_text() for p in gen.main()}
    assert {p.relative_to(ROOT) for p in committed} == set(fresh)
    for p, text in committed.items():
        assert fresh[p.relative_to(ROOT)] == text, f"{p} is stale: run python triton_models/generate.py"


@pytest.mark.parametrize("repo", REPOS)
def test_every_config_parses_and_the_ensemble_is_wired(repo):
    models = {p.parent.name: load(p) for p in (ROOT / repo).glob("*/config.pbtxt")}
    assert set(models) == {"ensemble", "preprocessing", "tensorrt_llm", "postprocessing", "tensorrt_llm_bls"}
    ens = models["ensemble"]
    assert ens.platform == "ensemble"
    available = {i.name for i in ens.input}
    for step in ens.ensemble_scheduling.step:
        m = models[step.model_name]
        assert set(step.input_map) <= {i.name for i in m.input}, step.model_name
        assert set(step.input_map.values()) <= available, step.model_name
        assert set(step.output_map) <= {o.name for o in m.output}, step.model_name
        available |= set(step.output_map.values())
    assert {o.name for o in ens.output} <= available
    trt = models["tensorrt_llm"]
    assert trt.backend == "tensorrtllm" and trt.model_transaction_policy.decoupled
    assert trt.parameters["gpt_model_type"].string_value == "inflight_fused_batching"
    assert "kv_cache_free_gpu_mem_fraction" in trt.parameters
    tp = 4 if "70b" in repo else 1
    assert f"tensor parallel {tp}" in (ROOT / repo / "tensorrt_llm" / "config.pbtxt").read_text()


@pytest.mark.parametrize("repo", REPOS)
@pytest.mark.parametrize("entry", ["ensemble", "tensorrt_llm_bls"])
def test_our_client_speaks_the_entry_models_contract(repo, entry):
    cfg = load(ROOT / repo / entry / "config.pbtxt")
    types = {i.name: model_config_pb2.DataType.Name(i.data_type) for i in cfg.input}
    for name, dtype in TRITON_INPUTS.items():
        assert types.get(name) == dtype, (name, types.get(name))
    required = {i.name for i in cfg.input if not i.optional}
    assert required <= set(TRITON_INPUTS), f"the client does not send {required - set(TRITON_INPUTS)}"
    outputs = {o.name: model_config_pb2.DataType.Name(o.data_type) for o in cfg.output}
    assert outputs[TRITON_OUTPUT] == "TYPE_STRING"
