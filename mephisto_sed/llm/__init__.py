"""LLM proposers: backends (Triton TensorRT-LLM, OpenAI-compatible), Llama-3.1 chat formatting,
strict parsing of proposals, cost accounting. The expert policy stays the default and fallback."""

from .backends import Completion, LLMError, OpenAIBackend, Resilient, TritonBackend, backend_from_url
from .chat import llama3_prompt
from .llm_policy import LLMPolicy

__all__ = [
    "Completion",
    "LLMError",
    "LLMPolicy",
    "OpenAIBackend",
    "Resilient",
    "TritonBackend",
    "backend_from_url",
    "llama3_prompt",
]
