"""`mephisto-sed up` as an operator runs it: NATS with one user per role (anonymous clients refused),
credentials in files of mode 0600 and off every command line, and supervision: a role or the
nats-server killed with SIGKILL is restarted and reported, and the platform still finishes jobs."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nats
import pytest

from gateway.client import GatewayClient, catalog_requests
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.catalog import read_catalog
from mephisto_sed.cli import example_catalog_path
from services.platform import free_port

from .platform_helpers import wait_jobs


class Up:
    """`mephisto-sed up` in a subprocess; its output lines arrive on a queue."""

    def __init__(self, data: Path):
        self.data = data
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "MEPHISTO_TOKENS")}
        env.update(MEPHISTO_ACK_WAIT="3", MEPHISTO_USE_KNOWLEDGE="0", MEPHISTO_DRAIN_SECONDS="10")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mephisto_sed.cli", "up", "--data-dir", str(data), "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120.0) -> str:
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

    def pid(self, name: str) -> int:
        state = json.loads((self.data / "run" / "processes.json").read_text())
        return next(p["pid"] for p in state["processes"] if p["name"] == name)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture
def up(tmp_path):
    u = Up(tmp_path / "platform")
    yield u
    assert u.stop() == 0


async def _connect_anonymously(url: str) -> str:
    try:
        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=5, max_reconnect_attempts=0)
    except Exception as exc:
        return str(exc) or type(exc).__name__
    await nc.close()
    return ""


def test_up_supervises_roles_and_nats_and_runs_nats_with_users(up):
    nats_line = up.wait_for("NATS ")
    up.wait_for("Ctrl-C stops everything.")
    url = nats_line.split()[1]
    data = up.data
    for secret in ("token", "nats-users.json"):
        assert (data / secret).stat().st_mode & 0o777 == 0o600, secret
    token = (data / "token").read_text().strip()
    gateway_cmdline = Path(f"/proc/{up.pid('gateway[0]')}/cmdline").read_bytes().decode()
    assert token not in gateway_cmdline  # tokens travel in the environment, not on a command line
    assert "uthorization" in asyncio.run(_connect_anonymously(url))  # nats-server refuses strangers

    os.kill(up.pid("executor[0]"), signal.SIGKILL)
    up.wait_for("executor[0] exited (killed by SIGKILL)")
    up.wait_for("executor[0] restarted")
    os.kill(up.pid("nats-server"), signal.SIGKILL)
    up.wait_for("nats-server exited (killed by SIGKILL)")
    up.wait_for("nats-server restarted")

    cat = read_catalog(example_catalog_path()).select(slice(0, 2))
    c = GatewayClient(f"127.0.0.1:{up.port}", token)
    req = catalog_requests(cat, list(cat.bands), pb.Budget(max_models=20_000, max_steps=6))[0]
    reply = wait_jobs(c, list(c.submit(req, timeout=120).job_ids))
    assert sorted(r.source_id for r in reply.results) == ["mock000", "mock001"]
    assert up.proc.poll() is None
