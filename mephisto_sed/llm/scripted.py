"""Start a real Triton server (PyTriton) serving the scripted responders of ``scripted_triton.py``
with the TensorRT-LLM ensemble's contract: the stand-in for the 8B/70B models where no GPU is at
hand (tests, `mephisto-sed bench llm`). PyTriton needs numpy<2, so it gets its own environment,
built once under $MEPHISTO_CACHE (or ~/.cache/mephisto-sed), or $MEPHISTO_PYTRITON_PYTHON."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from ..settings import settings

SCRIPT = Path(__file__).with_name("scripted_triton.py")
LLAMA_SCRIPT = Path(__file__).with_name("llama_triton.py")


def pytriton_python() -> str:
    if settings().pytriton_python:
        return settings().pytriton_python
    venv = settings().cache_dir / "pytriton-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", "nvidia-pytriton==0.7.0", "numpy<2"], check=True, timeout=1200
        )
    return str(py)


class ScriptedTriton:
    """``with ScriptedTriton() as url:`` → "127.0.0.1:PORT" serving ensemble, garbage, hostile, slow."""

    script = SCRIPT

    def __init__(self, log: str | Path | None = None, timeout: float = 180.0, args: tuple[str, ...] = ()):
        self.log = (
            Path(log) if log else Path(os.environ.get("TMPDIR", "/tmp")) / f"{self.script.stem}-{os.getpid()}.log"
        )
        self.timeout = timeout
        self.args = args
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        # three free ports (gRPC, HTTP, metrics), held together while chosen so they differ; the
        # ports after a free one are not necessarily free
        with contextlib.ExitStack() as stack:
            socks = [stack.enter_context(socket.socket()) for _ in range(3)]
            for s in socks:
                s.bind(("127.0.0.1", 0))
            ports = [s.getsockname()[1] for s in socks]
        port = ports[0]
        libdir = sysconfig.get_config_var("LIBDIR")  # PyTriton's tritonserver links the interpreter's libpython
        env = {**os.environ, "LD_LIBRARY_PATH": f"{libdir}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [pytriton_python(), str(self.script), *map(str, ports), *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + self.timeout
        while b"READY" not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"Triton did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        return f"127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class LlamaTriton(ScriptedTriton):
    """``with LlamaTriton(llama_url) as url:`` → a real Triton whose model ``gemma`` has the
    TensorRT-LLM ensemble's contract and forwards to the llama.cpp server at ``llama_url``."""

    script = LLAMA_SCRIPT

    def __init__(self, llama_url: str, log: str | Path | None = None, timeout: float = 180.0):
        super().__init__(log, timeout, (llama_url,))
