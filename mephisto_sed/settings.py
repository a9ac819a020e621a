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

    @classmethod
    def from_env(cls) -> CoreSettings:
        env = os.environ
        given = {
            "knowledge": env.get("MEPHISTO_KNOWLEDGE"),
            "qdrant_url": env.get("QDRANT_URL"),
            "cache_dir": env.get("MEPHISTO_CACHE"),
            "cosmos_dir": env.get("MEPHISTO_COSMOS_DIR"),
            "pytriton_python": env.get("MEPHISTO_PYTRITON_PYTHON"),
            "openai_api_key": env.get("OPENAI_API_KEY"),
            "token": env.get("MEPHISTO_TOKEN"),
        }
        paths = ("cache_dir", "cosmos_dir")
        return cls(**{k: Path(v) if k in paths else v for k, v in given.items() if v})  # type: ignore[arg-type]


def settings() -> CoreSettings:
    """The core's settings from the environment as it is now."""
    return CoreSettings.from_env()
