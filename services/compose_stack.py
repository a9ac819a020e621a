"""The compose stack in containers, driven as an operator would: `docker compose` on podman's
socket with the images `deploy/e2e/prepare.sh` made, published ports only, NATS as the operator
user, Prometheus' HTTP API, the containers' logs, and SIGKILL of a container's process.

Used by the end-to-end test (tests/test_compose_e2e.py) and `mephisto-sed bench compose`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mephisto_sed.api.v1 import mephisto_pb2 as pb

from .common.settings import e2e_cache_dir
from .platform import events_by_job

ROOT = Path(__file__).resolve().parents[1]
E2E = ROOT / "deploy" / "e2e"
PROJECT = "mephisto-e2e"
ROLES = ("gateway", "proposer", "executor", "evaluator", "distiller")
USERS = ("setup", "gateway", "proposer", "executor", "evaluator", "distiller", "pipeline", "operator")


def e2e_env() -> dict[str, str]:
    """deploy/e2e/env.sh's names (its plain KEY=value lines) and the environment it exports."""
    env = {}
    for line in (E2E / "env.sh").read_text().splitlines():
        m = re.fullmatch(r"([A-Z_0-9]+)=([^$\s]+)", line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    env["COMPOSE"] = str(e2e_cache_dir() / "bin" / "docker-compose")
    env["CONTAINERS_CONF"] = str(E2E / "containers.conf")
    env["DOCKER_HOST"] = f"unix://{env['PODMAN_SOCKET']}"
    return env


def real_credentials() -> dict[str, str]:
    """A password per NATS user and a gateway token (letters and digits: nats-server's token rule);
    the compose file's development defaults are refused."""
    env = {f"MEPHISTO_NATS_{u.upper()}_PASSWORD": "p" + secrets.token_hex(12) for u in USERS}
    return env | {"MEPHISTO_TOKENS": "t" + secrets.token_hex(16), "MEPHISTO_ALLOW_DEV_CREDENTIALS": "0"}


@dataclass
class ComposeStack:
    env: dict[str, str] = field(default_factory=dict)  # compose's environment: passwords, token, profile
    gateway: str = ""  # published addresses, 127.0.0.1:port
    prometheus: str = ""
    nats: str = ""  # nats://operator:…@127.0.0.1:port (nats-1)

    @classmethod
    def configured(cls, **env: str) -> ComposeStack:
        """The stack's environment: e2e names, real credentials, the cpu profile, ``env`` on top."""
        base = {**os.environ, **e2e_env(), **real_credentials(), "COMPOSE_PROFILES": "cpu"}
        stack = cls({**base, **env})
        if not Path(stack.env["COMPOSE"]).is_file():
            raise FileNotFoundError("docker-compose is missing: run bash deploy/e2e/prepare.sh")
        subprocess.run(["bash", str(E2E / "podman-service.sh")], env=stack.env, check=True, timeout=60)
        return stack

    def up(self, *args: str) -> None:
        """A fresh stack (what a previous run left is removed with its volumes), then its ports."""
        self.down()
        self.compose("up", "--detach", *args, timeout=600)
        self.gateway = self.published("gateway", 50051)
        self.prometheus = self.published("prometheus", 9090)
        password = self.env["MEPHISTO_NATS_OPERATOR_PASSWORD"]
        self.nats = f"nats://operator:{password}@{self.published('nats-1', 4222)}"

    def down(self) -> None:
        self.compose("down", "--volumes", "--timeout", "10", check=False)

    def compose(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        files = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(E2E / "compose.e2e.yml"), "-p", PROJECT]
        done = subprocess.run(
            [self.env["COMPOSE"], *files, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode:
            raise RuntimeError(f"docker compose {' '.join(args)}: {done.stderr[-3000:]}")
        return done

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, timeout=600)
        if check and done.returncode:
            raise RuntimeError(f"podman {' '.join(args)}: {done.stderr[-3000:]}")
        return done

    def published(self, service: str, port: int) -> str:
        address = self.compose("port", service, str(port)).stdout.strip()
        if not address.startswith("127.0.0.1:"):
            raise RuntimeError(f"{service}:{port} is published on {address!r}, not on 127.0.0.1 only")
        return address

    def container(self, service: str, index: int = 1) -> str:
        return f"{PROJECT}-{service}-{index}"

    def healthy(self, service: str) -> bool:
        """The image's HEALTHCHECK, run now: podman runs them from systemd timers, which these
        machines lack, so whoever needs the health asks for it."""
        return self.podman("healthcheck", "run", self.container(service), check=False).returncode == 0

    def crash(self, service: str) -> None:
        """SIGKILL the container's main process, as the OOM killer or a crash would (``podman kill``
        counts as an operator's stop, which restart policies leave stopped)."""
        pid = int(self.podman("inspect", "--format", "{{.State.Pid}}", self.container(service)).stdout)
        if pid <= 0:
            raise RuntimeError(f"{service} is not running")
        os.kill(pid, signal.SIGKILL)

    def stream_leader(self, stream: str) -> str:
        """The NATS node leading ``stream`` (the monitoring endpoint, inside the cluster)."""
        url = "http://127.0.0.1:8222/jsz?accounts=true&streams=true"
        jsz = json.loads(self.podman("exec", self.container("nats-1"), "wget", "-qO-", url).stdout)
        for account in jsz.get("account_details", []):
            for detail in account.get("stream_detail", []):
                if detail["name"] == stream:
                    return str(detail["cluster"]["leader"])
        raise RuntimeError(f"no stream {stream} on the cluster")

    def client(self) -> Any:
        from gateway.client import GatewayClient

        return GatewayClient(self.gateway, self.env["MEPHISTO_TOKENS"])

    def events(self) -> dict[str, list[pb.ProgressEvent]]:
        """Every progress event in the events stream, per job (read as the operator user)."""
        url = urllib.parse.urlsplit(self.nats)
        return events_by_job(f"nats://{url.hostname}:{url.port}", "operator", url.password or "")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query to Prometheus' HTTP API."""
        q = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"http://{self.prometheus}/api/v1/query?{q}", timeout=10) as r:
            body = json.load(r)
        if body["status"] != "success":
            raise RuntimeError(f"Prometheus: {body}")
        return list(body["data"]["result"])

    def logs(self, tail: int = 40) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), check=False).stdout
