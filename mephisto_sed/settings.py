"""Every environment variable the core reads, in one place (the platform's are in
``services/common/settings.py``). Read when asked, so a test or a notebook that sets one sees it.

| variable | what |
|---|---|
| MEPHISTO_KNOWLEDGE | knowledge base folder (default ~/.local/share/mephisto-sed/knowledge) |
| QDRANT_URL | a Qdrant server instead of the local folder |
| MEPHISTO_CACHE | cache folder (reference χ² grids, the PyTriton venv; default ~/.cache/mephisto-sed) |
| MEPHISTO_COSMOS_DIR | the COSMOS2020 data for benchmarks (default ../shared/data/cosmos2020_specz) |
| MEPHISTO_PYTRITON_PYTHON | a Python with nvidia-pytriton for the scripted Triton test server |
| OPENAI_API_KEY | key for openai:// LLM endpoints |
| MEPHISTO_TOKEN | the gateway token `submit` sends (else --token-file) |
| MEPHISTO_LLM_TIMEOUT | seconds an LLM call may take (default 60; never past the search's time budget) |
| MEPHISTO_LLM_RETRIES | retries of a failed LLM call, with exponential back-off (default 2) |
| MEPHISTO_LLM_CONCURRENCY | LLM calls in flight at once per backend in one process (default 4) |
| MEPHISTO_LLM_CONTEXT | the model's context in tokens: prompts are trimmed to fit with the reply (default 4096) |
| MEPHISTO_LLM_MODE | `free` (the LLM writes actions) or `choose` (it picks one expert candidate by index) |
| MEPHISTO_LLAMA_SERVER | a llama.cpp `llama-server` to use instead of the one built into the cache |
| MEPHISTO_LLM_TOKENIZER | a llama.cpp-style `/tokenize` URL that counts a Triton model's tokens exactly |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_KNOWLEDGE = "~/.local/share/mephisto-sed/knowledge"
_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CoreSettings:
    """A plain frozen dataclass: the CLI reads it before anything heavy is imported."""

    knowledge: str = DEFAULT_KNOWLEDGE
    qdrant_url: str = ""
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "mephisto-sed")
    cosmos_dir: Path = _ROOT.parent / "shared" / "data" / "cosmos2020_specz"
    pytriton_python: str = ""
    openai_api_key: str = ""
    token: str = ""
    llm_timeout: float = 60.0
    llm_retries: int = 2
    llm_concurrency: int = 4
    llm_context: int = 4096
    llm_mode: str = "free"
    llm_tokenizer: str = ""
    llama_server: str = ""

    @classmethod
    def from_env(cls) -> CoreSettings:
        env = os.environ
        names = {
            "knowledge": "MEPHISTO_KNOWLEDGE",
            "qdrant_url": "QDRANT_URL",
            "cache_dir": "MEPHISTO_CACHE",
            "cosmos_dir": "MEPHISTO_COSMOS_DIR",
            "pytriton_python": "MEPHISTO_PYTRITON_PYTHON",
            "openai_api_key": "OPENAI_API_KEY",
            "token": "MEPHISTO_TOKEN",
            "llm_timeout": "MEPHISTO_LLM_TIMEOUT",
            "llm_retries": "MEPHISTO_LLM_RETRIES",
            "llm_concurrency": "MEPHISTO_LLM_CONCURRENCY",
            "llm_context": "MEPHISTO_LLM_CONTEXT",
            "llm_mode": "MEPHISTO_LLM_MODE",
            "llm_tokenizer": "MEPHISTO_LLM_TOKENIZER",
            "llama_server": "MEPHISTO_LLAMA_SERVER",
        }
        given = {k: env.get(name) for k, name in names.items()}
        kinds = {"cache_dir": Path, "cosmos_dir": Path, "llm_timeout": float}
        kinds |= dict.fromkeys(("llm_retries", "llm_concurrency", "llm_context"), int)
        out = {}
        for k, v in given.items():
            if not v:
                continue
            try:
                out[k] = kinds.get(k, str)(v)
            except ValueError:
                raise ValueError(f"{names[k]}: {v!r} is not a {kinds[k].__name__}") from None
        if out.get("llm_mode", "free") not in ("free", "choose"):
            raise ValueError(f"MEPHISTO_LLM_MODE must be free or choose, not {out['llm_mode']!r}")
        return cls(**out)  # type: ignore[arg-type]


def settings() -> CoreSettings:
    """The core's settings from the environment as it is now."""
    return CoreSettings.from_env()
