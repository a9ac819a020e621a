"""LLM backends behind one interface: ``complete(messages, max_tokens, temperature) -> Completion``.

* TritonBackend: NVIDIA Triton over gRPC (``tritonclient``), speaking the TensorRT-LLM ensemble's
  contract (``text_input`` BYTES, ``max_tokens`` INT32, ``temperature`` FP32, ``stop_words`` BYTES,
  ``stream`` BOOL → ``text_output`` BYTES), streaming through decoupled models.
* OpenAIBackend: any OpenAI-compatible ``/v1/chat/completions`` (vLLM, llama.cpp server, hosted),
  streamed, with ``response_format`` = ``json_schema`` when a reply schema is given.
* Resilient: timeouts, retries with exponential back-off, a circuit breaker, a cap on calls in flight.

Every backend constrains decoding to a JSON schema when given one (OpenAI ``response_format``;
TensorRT-LLM's ``guided_decoding_guide_type``/``guided_decoding_guide`` inputs on Triton) and
counts tokens before a call (``count_tokens``): exactly with the model's own tokenizer where the
server has one (llama.cpp's ``/apply-template`` + ``/tokenize``, or MEPHISTO_LLM_TOKENIZER), else
with an upper bound (one token per UTF-8 byte, since every token of a byte-level vocabulary spans
at least one byte), so a token budget holds either way.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

import numpy as np

from ..settings import settings
from .chat import CHAT_FORMATS, STOP_WORDS, token_upper_bound

# The ensemble inputs and outputs this client sends and reads: checked against triton_models/
# by the tests and against the server's model config at start-up.
TRITON_INPUTS = {
    "text_input": "TYPE_STRING",
    "max_tokens": "TYPE_INT32",
    "temperature": "TYPE_FP32",
    "stop_words": "TYPE_STRING",
    "stream": "TYPE_BOOL",
    "guided_decoding_guide_type": "TYPE_STRING",
    "guided_decoding_guide": "TYPE_STRING",
    "return_num_input_tokens": "TYPE_BOOL",
    "return_num_output_tokens": "TYPE_BOOL",
}
TRITON_COUNTS = ("num_input_tokens", "num_output_tokens")  # the server's token counts, when asked
TRITON_OUTPUT = "text_output"
Messages = list[dict[str, str]]


class LLMError(RuntimeError):
    """The LLM could not answer (down, timed out, circuit open, malformed reply)."""


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    estimated: bool  # token counts bounded here, not counted by the model's tokenizer or reported
    latency_s: float
    model: str = ""


@dataclass(frozen=True)
class TokenCount:
    n: int
    exact: bool  # False: an upper bound


class Backend(Protocol):
    name: str

    def complete(
        self,
        messages: Messages,
        max_tokens: int = 512,
        temperature: float = 0.2,
        schema: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Completion: ...

    def count_tokens(self, messages: Messages) -> TokenCount: ...


def messages_upper_bound(messages: Messages) -> int:
    """Tokens a chat prompt can take at most: its text's bytes plus each turn's special tokens."""
    return sum(token_upper_bound(m["content"]) for m in messages) + 8


def count_text(tokenizer: ServerTokenizer | None, text: str, add_special: bool = True) -> TokenCount:
    """``text``'s tokens by ``tokenizer`` where it answers, else the byte bound."""
    n = tokenizer.count(text, add_special) if tokenizer is not None else None
    return TokenCount(n, True) if n is not None else TokenCount(token_upper_bound(text), False)


class ServerTokenizer:
    """A model's own tokenizer behind llama.cpp's ``POST /tokenize`` (``{"content": text}`` →
    ``{"tokens": [...]}``); ``None`` from ``count`` once the endpoint has failed (then bounds)."""

    def __init__(self, url: str, timeout: float = 10.0):
        import httpx

        self.url = url
        self.http = httpx.Client(timeout=timeout)
        self.works = True

    def count(self, text: str, add_special: bool = True) -> int | None:
        if not self.works:
            return None
        try:
            r = self.http.post(self.url, json={"content": text, "add_special": add_special})
            r.raise_for_status()
            return len(r.json()["tokens"])
        except Exception:  # noqa: BLE001 - no tokenizer there: bound instead, from now on
            self.works = False
            return None


class TritonBackend:
    """A TensorRT-LLM ensemble (or BLS) model on Triton, over gRPC, streamed. ``chat`` names the
    prompt format the model was trained on (``llama3``, ``gemma``)."""

    def __init__(
        self,
        url: str,
        model: str = "ensemble",
        timeout: float = 30.0,
        stream: bool = True,
        chat: str = "llama3",
        tokenizer_url: str = "",
    ):
        import tritonclient.grpc as grpcclient

        if chat not in CHAT_FORMATS:
            raise ValueError(f"unknown chat format {chat!r}; known: {', '.join(CHAT_FORMATS)}")
        self._g = grpcclient
        self.url, self.model, self.timeout, self.stream = url, model, timeout, stream
        self.format: Callable[[Messages], str] = CHAT_FORMATS[chat]
        self.name = f"triton:{model}"
        self.client = grpcclient.InferenceServerClient(url)
        self.tokenizer = ServerTokenizer(tokenizer_url) if tokenizer_url else None
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

    @property
    def guided(self) -> bool:
        """Whether the model takes TensorRT-LLM's guided-decoding inputs (a JSON schema)."""
        if not self._checked:
            self.check_contract()
        return "guided_decoding_guide" in self._inputs and "guided_decoding_guide_type" in self._inputs

    def count_tokens(self, messages: Messages) -> TokenCount:
        return count_text(self.tokenizer, self.format(messages))

    def _tensor(self, name: str, value: Any, dtype: str) -> Any:
        arr = np.array(
            [[value]],
            dtype=object if dtype == "BYTES" else {"INT32": np.int32, "FP32": np.float32, "BOOL": bool}[dtype],
        )
        t = self._g.InferInput(name, list(arr.shape), dtype)
        t.set_data_from_numpy(arr)
        return t

    def _inputs_for(self, prompt: str, max_tokens: int, temperature: float, schema: dict[str, Any] | None) -> list:
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
        if "stream" in self._inputs:
            ins.append(self._tensor("stream", self.stream and self._decoupled, "BOOL"))
        for flag in ("return_num_input_tokens", "return_num_output_tokens"):
            if flag in self._inputs:
                ins.append(self._tensor(flag, True, "BOOL"))
        if schema is not None and self.guided:
            ins.append(self._tensor("guided_decoding_guide_type", b"json_schema", "BYTES"))
            ins.append(self._tensor("guided_decoding_guide", json.dumps(schema).encode(), "BYTES"))
        return ins

    def complete(
        self,
        messages: Messages,
        max_tokens: int = 512,
        temperature: float = 0.2,
        schema: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Completion:
        timeout = min(timeout or self.timeout, self.timeout)
        try:
            if not self._checked:
                self.check_contract()
            prompt = self.format(messages)
            ins = self._inputs_for(prompt, max_tokens, temperature, schema)
            t0 = time.perf_counter()
            counts: dict[str, int] = {}
            if self._decoupled:
                text = self._streamed(ins, timeout, counts)
            else:
                text = self._unary(ins, timeout, counts)
        except LLMError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection refused, deadline exceeded, server errors
            raise LLMError(f"{self.name}: {type(exc).__name__}: {str(exc)[:300]}") from None
        latency = time.perf_counter() - t0
        for w in STOP_WORDS:
            text = text.split(w)[0]
        if set(counts) == set(TRITON_COUNTS):  # the server counted
            p, c = TokenCount(counts["num_input_tokens"], True), TokenCount(counts["num_output_tokens"], True)
        else:
            p, c = count_text(self.tokenizer, prompt), count_text(self.tokenizer, text, add_special=False)
        return Completion(text, p.n, min(c.n, max_tokens), not (p.exact and c.exact), latency, self.model)

    @staticmethod
    def _add_counts(result: Any, counts: dict[str, int]) -> None:
        """Input tokens once; output tokens summed over streamed responses (each carries its own)."""
        for name in TRITON_COUNTS:
            arr = result.as_numpy(name)
            if arr is not None and arr.size:
                n = int(np.sum(arr))
                counts[name] = max(counts.get(name, 0), n) if name == "num_input_tokens" else counts.get(name, 0) + n

    def _unary(self, ins: list[Any], timeout: float, counts: dict[str, int]) -> str:
        res = self.client.infer(self.model, ins, client_timeout=timeout)
        self._add_counts(res, counts)
        return b"".join(
            x if isinstance(x, bytes) else str(x).encode() for x in res.as_numpy(TRITON_OUTPUT).ravel()
        ).decode()

    def _streamed(self, ins: list[Any], timeout: float, counts: dict[str, int]) -> str:
        q: queue.Queue = queue.Queue()
        self.client.start_stream(callback=lambda result, error: q.put((result, error)))
        pieces: list[str] = []
        deadline = time.monotonic() + timeout
        try:
            self.client.async_stream_infer(self.model, ins, enable_empty_final_response=True)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LLMError(f"{self.name}: no complete reply within {timeout:g} s")
                try:
                    result, error = q.get(timeout=left)
                except queue.Empty:
                    raise LLMError(f"{self.name}: no complete reply within {timeout:g} s") from None
                if error is not None:
                    raise LLMError(f"{self.name}: {str(error)[:300]}")
                arr = result.as_numpy(TRITON_OUTPUT)
                if arr is not None and arr.size:
                    pieces.append(b"".join(x for x in arr.ravel()).decode(errors="replace"))
                self._add_counts(result, counts)
                final = result.get_response().parameters.get("triton_final_response")
                if final is not None and final.bool_param:
                    return "".join(pieces)
        finally:
            self.client.stop_stream(cancel_requests=True)  # cancels the request when the deadline passed


class OpenAIBackend:
    """Any OpenAI-compatible chat completions endpoint, streamed (a plain JSON reply is read too).
    A call past its deadline is cancelled by closing the connection (llama.cpp and vLLM then stop
    generating)."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 30.0, stream: bool = True):
        import httpx

        self._httpx = httpx
        self.name = f"openai:{model}"
        self.model, self.timeout, self.stream = model, timeout, stream
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        root = self.base_url.removesuffix("/v1")
        self.tokenizer = ServerTokenizer(f"{root}/tokenize")  # llama.cpp's; bounds elsewhere
        self._template_url = f"{root}/apply-template"

    def count_tokens(self, messages: Messages) -> TokenCount:
        """The prompt as the server will see it (its chat template), counted by its tokenizer."""
        if self.tokenizer.works:
            try:
                r = self.http.post(self._template_url, json={"messages": messages})
                r.raise_for_status()
                n = self.tokenizer.count(r.json()["prompt"], add_special=True)
                if n is not None:
                    return TokenCount(n, True)
            except Exception:  # noqa: BLE001 - not llama.cpp: bound instead, from now on
                self.tokenizer.works = False
        return TokenCount(messages_upper_bound(messages), False)

    def complete(
        self,
        messages: Messages,
        max_tokens: int = 512,
        temperature: float = 0.2,
        schema: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Completion:
        timeout = min(timeout or self.timeout, self.timeout)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": schema, "strict": True},
            }
        if self.stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        t0 = time.perf_counter()
        try:
            text, usage = self._post(body, timeout)
        except self._httpx.TimeoutException:
            raise LLMError(f"{self.name}: no complete reply within {timeout:g} s") from None
        except LLMError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the endpoint or its reply is an LLMError
            raise LLMError(f"{self.name}: {type(exc).__name__}: {str(exc)[:300]}") from None
        latency = time.perf_counter() - t0
        if "prompt_tokens" in usage and "completion_tokens" in usage:
            p, c = TokenCount(int(usage["prompt_tokens"]), True), TokenCount(int(usage["completion_tokens"]), True)
        else:
            p, c = self.count_tokens(messages), count_text(self.tokenizer, text, add_special=False)
        return Completion(text, p.n, min(c.n, max_tokens), not (p.exact and c.exact), latency, self.model)

    def _post(self, body: dict[str, Any], timeout: float) -> tuple[str, dict[str, Any]]:
        """The reply's text and usage; streamed replies are read chunk by chunk until the deadline."""
        deadline = time.monotonic() + timeout
        pieces: list[str] = []
        usage: dict[str, Any] = {}
        with self.http.stream("POST", "/chat/completions", json=body, timeout=timeout) as r:
            if r.status_code >= 400:
                r.read()
                raise LLMError(f"{self.name}: HTTP {r.status_code}: {r.text[:300]}")
            if not r.headers.get("content-type", "").startswith("text/event-stream"):
                data = json.loads(r.read())
                return data["choices"][0]["message"]["content"] or "", data.get("usage") or {}
            for line in r.iter_lines():
                if time.monotonic() > deadline:
                    raise LLMError(f"{self.name}: no complete reply within {timeout:g} s")
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                chunk = json.loads(payload)
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    pieces.append((choice.get("delta") or {}).get("content") or "")
        return "".join(pieces), usage


class Resilient:
    """Retries with exponential back-off within the call's deadline; after ``failures_to_open``
    failed calls in a row the circuit opens for ``open_seconds`` and calls fail at once (the agent
    falls back meanwhile); at most ``concurrency`` calls in flight (the rest wait their turn)."""

    def __init__(
        self,
        backend: Backend,
        retries: int = 2,
        backoff: float = 0.5,
        failures_to_open: int = 3,
        open_seconds: float = 60.0,
        concurrency: int = 4,
    ):
        self.backend, self.retries, self.backoff = backend, retries, backoff
        self.failures_to_open, self.open_seconds = failures_to_open, open_seconds
        self.name = backend.name
        self.failures = 0
        self.open_until = 0.0
        self._slots = threading.BoundedSemaphore(max(concurrency, 1))

    def count_tokens(self, messages: Messages) -> TokenCount:
        return self.backend.count_tokens(messages)

    def complete(
        self,
        messages: Messages,
        max_tokens: int = 512,
        temperature: float = 0.2,
        schema: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Completion:
        if time.monotonic() < self.open_until:
            raise LLMError(f"{self.name}: circuit open after {self.failures} failures")
        deadline = None if timeout is None else time.monotonic() + timeout
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                last = last or LLMError(f"{self.name}: no time left for the call")
                break
            try:
                if not self._slots.acquire(timeout=left if left is not None else -1):
                    raise LLMError(f"{self.name}: no free call slot within {timeout:g} s")
                try:
                    out = self.backend.complete(messages, max_tokens, temperature, schema, left)
                finally:
                    self._slots.release()
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


def backend_from_url(url: str, timeout: float | None = None) -> Resilient:
    """``triton://host:8001/ensemble[?chat=gemma]`` or ``openai://host:8000/v1?model=NAME``
    (``openais://`` for HTTPS; the key from OPENAI_API_KEY). Timeout, retries and calls in flight
    come from the settings (MEPHISTO_LLM_TIMEOUT, _RETRIES, _CONCURRENCY)."""

    cfg = settings()
    timeout = cfg.llm_timeout if timeout is None else timeout
    u = urlparse(url)
    query = parse_qs(u.query)

    def resilient(backend: Backend) -> Resilient:
        return Resilient(backend, retries=cfg.llm_retries, concurrency=cfg.llm_concurrency)

    if u.scheme == "triton":
        chat = query.get("chat", ["llama3"])[0]
        model = u.path.strip("/") or "ensemble"
        return resilient(TritonBackend(u.netloc, model, timeout, chat=chat, tokenizer_url=cfg.llm_tokenizer))
    if u.scheme in ("openai", "openais"):
        model = query.get("model", [""])[0]
        if not model:
            raise ValueError(f"{url}: give the model, e.g. openai://host:8000/v1?model=llama-3.1-8b")
        base = f"{'https' if u.scheme == 'openais' else 'http'}://{u.netloc}{u.path or '/v1'}"
        return resilient(OpenAIBackend(base, model, cfg.openai_api_key, timeout))
    raise ValueError(f"{url}: unknown LLM backend (triton://host:port/model or openai://host:port/v1?model=...)")
