"""LLM backends behind one interface: ``complete(messages, max_tokens, temperature) -> Completion``.

* TritonBackend: NVIDIA Triton over gRPC (``tritonclient``), speaking the TensorRT-LLM ensemble's
  contract (``text_input`` BYTES, ``max_tokens`` INT32, ``temperature`` FP32, ``stop_words`` BYTES,
  ``stream`` BOOL → ``text_output`` BYTES), streaming through decoupled models.
* OpenAIBackend: any OpenAI-compatible ``/v1/chat/completions`` (vLLM, llama.cpp server, hosted).
* Resilient: timeouts, retries with exponential back-off, a circuit breaker.
"""

from __future__ import annotations

import json
import queue
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

import numpy as np

from ..settings import settings
from .chat import STOP_WORDS, estimate_tokens, llama3_prompt

# The ensemble inputs and outputs this client sends and reads: checked against triton_models/
# by the tests and against the server's model config at start-up.
TRITON_INPUTS = {
    "text_input": "TYPE_STRING",
    "max_tokens": "TYPE_INT32",
    "temperature": "TYPE_FP32",
    "stop_words": "TYPE_STRING",
    "stream": "TYPE_BOOL",
}
TRITON_OUTPUT = "text_output"


class LLMError(RuntimeError):
    """The LLM could not answer (down, timed out, circuit open, malformed reply)."""


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    estimated: bool  # token counts estimated here, not reported by the backend
    latency_s: float
    model: str = ""


class Backend(Protocol):
    name: str

    def complete(
        self, messages: list[dict[str, str]], max_tokens: int = 512, temperature: float = 0.2
    ) -> Completion: ...


class TritonBackend:
    """A TensorRT-LLM ensemble (or BLS) model on Triton, over gRPC, streamed."""

    def __init__(self, url: str, model: str = "ensemble", timeout: float = 30.0, stream: bool = True):
        import tritonclient.grpc as grpcclient

        self._g = grpcclient
        self.url, self.model, self.timeout, self.stream = url, model, timeout, stream
        self.name = f"triton:{model}"
        self.client = grpcclient.InferenceServerClient(url)
        self._checked = False

    def check_contract(self) -> None:
        """The model's inputs must include ours with our types, and produce ``text_output``."""
        cfg = self.client.get_model_config(self.model, as_json=True, client_timeout=self.timeout)["config"]
        inputs = {i["name"]: i["data_type"] for i in cfg.get("input", [])}
        outputs = {o["name"] for o in cfg.get("output", [])}
        missing = [n for n in ("text_input", "max_tokens") if n not in inputs]
        wrong = [n for n, t in TRITON_INPUTS.items() if n in inputs and inputs[n] != t]
        if missing or wrong or TRITON_OUTPUT not in outputs:
            raise LLMError(
                f"Triton model {self.model!r} does not speak the TensorRT-LLM ensemble contract: "
                f"missing {missing}, wrong types {wrong}, outputs {sorted(outputs)}"
            )
        self._inputs = inputs
        self._decoupled = bool(cfg.get("model_transaction_policy", {}).get("decoupled", False))
        self._checked = True

    def _tensor(self, name: str, value: Any, dtype: str) -> Any:
        arr = np.array(
            [[value]],
            dtype=object if dtype == "BYTES" else {"INT32": np.int32, "FP32": np.float32, "BOOL": bool}[dtype],
        )
        t = self._g.InferInput(name, list(arr.shape), dtype)
        t.set_data_from_numpy(arr)
        return t

    def complete(self, messages: list[dict[str, str]], max_tokens: int = 512, temperature: float = 0.2) -> Completion:
        try:
            if not self._checked:
                self.check_contract()
            prompt = llama3_prompt(messages)
            ins = [
                self._tensor("text_input", prompt.encode(), "BYTES"),
                self._tensor("max_tokens", max_tokens, "INT32"),
            ]
            if "temperature" in self._inputs:
                ins.append(self._tensor("temperature", temperature, "FP32"))
            if "stop_words" in self._inputs:
                t = self._g.InferInput("stop_words", [1, len(STOP_WORDS)], "BYTES")
                t.set_data_from_numpy(np.array([[w.encode() for w in STOP_WORDS]], dtype=object))
                ins.append(t)
            streaming = self.stream and self._decoupled
            if "stream" in self._inputs:
                ins.append(self._tensor("stream", streaming, "BOOL"))
            t0 = time.perf_counter()
            text = self._streamed(ins) if self._decoupled else self._unary(ins)
        except LLMError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection refused, deadline exceeded, server errors
            raise LLMError(f"{self.name}: {type(exc).__name__}: {str(exc)[:300]}") from None
        for w in STOP_WORDS:
            text = text.split(w)[0]
        return Completion(
            text, estimate_tokens(prompt), estimate_tokens(text), True, time.perf_counter() - t0, self.model
        )

    def _unary(self, ins: list[Any]) -> str:
        res = self.client.infer(self.model, ins, client_timeout=self.timeout)
        return b"".join(
            x if isinstance(x, bytes) else str(x).encode() for x in res.as_numpy(TRITON_OUTPUT).ravel()
        ).decode()

    def _streamed(self, ins: list[Any]) -> str:
        q: queue.Queue = queue.Queue()
        self.client.start_stream(callback=lambda result, error: q.put((result, error)))
        pieces: list[str] = []
        deadline = time.monotonic() + self.timeout
        try:
            self.client.async_stream_infer(self.model, ins, enable_empty_final_response=True)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LLMError(f"{self.name}: no complete reply within {self.timeout:g} s")
                try:
                    result, error = q.get(timeout=left)
                except queue.Empty:
                    raise LLMError(f"{self.name}: no complete reply within {self.timeout:g} s") from None
                if error is not None:
                    raise LLMError(f"{self.name}: {str(error)[:300]}")
                arr = result.as_numpy(TRITON_OUTPUT)
                if arr is not None and arr.size:
                    pieces.append(b"".join(x for x in arr.ravel()).decode(errors="replace"))
                final = result.get_response().parameters.get("triton_final_response")
                if final is not None and final.bool_param:
                    return "".join(pieces)
        finally:
            self.client.stop_stream(cancel_requests=True)  # one stream per client: close it before the next call


class OpenAIBackend:
    """Any OpenAI-compatible chat completions endpoint."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 30.0):
        import httpx

        self.name = f"openai:{model}"
        self.model, self.timeout = model, timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def complete(self, messages: list[dict[str, str]], max_tokens: int = 512, temperature: float = 0.2) -> Completion:
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        t0 = time.perf_counter()
        try:
            r = self.http.post("/chat/completions", json=body)
            r.raise_for_status()
            data = r.json()
            text = data["choices"][0]["message"]["content"] or ""
        except Exception as exc:  # noqa: BLE001 - any failure of the endpoint or its reply is an LLMError
            raise LLMError(f"{self.name}: {type(exc).__name__}: {str(exc)[:300]}") from None
        usage = data.get("usage") or {}
        estimated = "prompt_tokens" not in usage
        prompt_tokens = int(usage.get("prompt_tokens") or estimate_tokens(json.dumps(messages)))
        completion_tokens = int(usage.get("completion_tokens") or estimate_tokens(text))
        return Completion(text, prompt_tokens, completion_tokens, estimated, time.perf_counter() - t0, self.model)


class Resilient:
    """Retries with exponential back-off; after ``failures_to_open`` failed calls in a row the
    circuit opens for ``open_seconds`` and calls fail at once (the agent falls back meanwhile)."""

    def __init__(
        self,
        backend: Backend,
        retries: int = 2,
        backoff: float = 0.5,
        failures_to_open: int = 3,
        open_seconds: float = 60.0,
    ):
        self.backend, self.retries, self.backoff = backend, retries, backoff
        self.failures_to_open, self.open_seconds = failures_to_open, open_seconds
        self.name = backend.name
        self.failures = 0
        self.open_until = 0.0

    def complete(self, messages: list[dict[str, str]], max_tokens: int = 512, temperature: float = 0.2) -> Completion:
        if time.monotonic() < self.open_until:
            raise LLMError(f"{self.name}: circuit open after {self.failures} failures")
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                out = self.backend.complete(messages, max_tokens, temperature)
                self.failures = 0
                return out
            except LLMError as exc:
                last = exc
                if attempt < self.retries:
                    time.sleep(self.backoff * 2**attempt)
        self.failures += 1
        if self.failures >= self.failures_to_open:
            self.open_until = time.monotonic() + self.open_seconds
        raise LLMError(str(last))


def backend_from_url(url: str, timeout: float = 30.0) -> Resilient:
    """``triton://host:8001/ensemble`` or ``openai://host:8000/v1?model=NAME`` (``openais://`` for
    HTTPS; the key from OPENAI_API_KEY)."""

    u = urlparse(url)
    if u.scheme == "triton":
        return Resilient(TritonBackend(u.netloc, u.path.strip("/") or "ensemble", timeout))
    if u.scheme in ("openai", "openais"):
        model = parse_qs(u.query).get("model", [""])[0]
        if not model:
            raise ValueError(f"{url}: give the model, e.g. openai://host:8000/v1?model=llama-3.1-8b")
        base = f"{'https' if u.scheme == 'openais' else 'http'}://{u.netloc}{u.path or '/v1'}"
        return Resilient(OpenAIBackend(base, model, settings().openai_api_key, timeout))
    raise ValueError(f"{url}: unknown LLM backend (triton://host:port/model or openai://host:port/v1?model=...)")
