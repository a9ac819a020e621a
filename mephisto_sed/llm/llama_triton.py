"""A real Triton server (PyTriton) whose model ``gemma`` has the TensorRT-LLM ensemble's contract —
``text_input``, ``max_tokens``, ``temperature``, ``stop_words``, ``stream``, the guided-decoding
inputs and ``return_num_*_tokens`` → ``text_output``, ``num_input_tokens``, ``num_output_tokens`` —
and forwards each request to a real language model: llama.cpp's ``/completion`` (raw prompt,
``json_schema`` for guided decoding, streamed back piece by piece). The stand-in for a TensorRT-LLM
engine where no GPU is at hand. Runs in PyTriton's own environment (numpy<2; stdlib HTTP only):

    python llama_triton.py GRPC_PORT HTTP_PORT METRICS_PORT LLAMA_URL
"""

import json
import sys
import urllib.request

import numpy as np
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

INPUTS = [
    Tensor(name="text_input", dtype=bytes, shape=(1,)),
    Tensor(name="max_tokens", dtype=np.int32, shape=(1,)),
    Tensor(name="temperature", dtype=np.float32, shape=(1,), optional=True),
    Tensor(name="stop_words", dtype=bytes, shape=(-1,), optional=True),
    Tensor(name="stream", dtype=np.bool_, shape=(1,), optional=True),
    Tensor(name="guided_decoding_guide_type", dtype=bytes, shape=(1,), optional=True),
    Tensor(name="guided_decoding_guide", dtype=bytes, shape=(1,), optional=True),
    Tensor(name="return_num_input_tokens", dtype=np.bool_, shape=(1,), optional=True),
    Tensor(name="return_num_output_tokens", dtype=np.bool_, shape=(1,), optional=True),
]
OUTPUTS = [
    Tensor(name="text_output", dtype=bytes, shape=(1,)),
    Tensor(name="num_input_tokens", dtype=np.int32, shape=(1,)),
    Tensor(name="num_output_tokens", dtype=np.int32, shape=(1,)),
]


def _first(req, name, default=None):
    return req[name].ravel()[0] if name in req else default


def _body(req) -> dict:
    body = {
        "prompt": _first(req, "text_input").decode(),
        "n_predict": int(_first(req, "max_tokens")),
        "temperature": float(_first(req, "temperature", 0.2)),
        "stream": True,
        "cache_prompt": True,
    }
    if "stop_words" in req:
        body["stop"] = [s.decode() for s in req["stop_words"].ravel() if s]
    kind = _first(req, "guided_decoding_guide_type", b"").decode()
    if kind == "json_schema":
        body["json_schema"] = json.loads(_first(req, "guided_decoding_guide").decode())
    elif kind == "json":
        body["json_schema"] = {}
    return body


def _response(text: str, n_in: int, n_out: int) -> dict:
    return {
        "text_output": np.array([[text.encode()]], dtype=object),
        "num_input_tokens": np.array([[n_in]], dtype=np.int32),
        "num_output_tokens": np.array([[n_out]], dtype=np.int32),
    }


def make(llama_url: str):
    def infer(requests):
        for req in requests:  # one at a time: the server behind has one slot
            http = urllib.request.Request(
                f"{llama_url}/completion",
                data=json.dumps(_body(req)).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(http, timeout=600) as r:
                for raw in r:
                    line = raw.decode().strip()
                    if not line.startswith("data:"):
                        continue
                    chunk = json.loads(line[5:])
                    if chunk.get("stop"):  # the last piece carries the counts
                        n_in, n_out = int(chunk.get("tokens_evaluated", 0)), int(chunk.get("tokens_predicted", 0))
                        yield [_response(chunk.get("content", ""), n_in, n_out)]
                        break
                    yield [_response(chunk.get("content", ""), 0, 0)]

    return infer


if __name__ == "__main__":
    grpc_port, http_port, metrics_port = (int(a) for a in sys.argv[1:4])
    llama_url = sys.argv[4].removesuffix("/v1")
    config = TritonConfig(grpc_port=grpc_port, http_port=http_port, metrics_port=metrics_port, log_verbose=0)
    with Triton(config=config) as triton:
        triton.bind(
            model_name="gemma",
            infer_func=make(llama_url),
            inputs=INPUTS,
            outputs=OUTPUTS,
            config=ModelConfig(decoupled=True, max_batch_size=1),
            strict=False,
        )
        print("READY", flush=True)
        triton.serve()
