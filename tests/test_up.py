"""`mephisto-sed up` as an operator runs it: NATS with one user per role (anonymous clients refused),
credentials in files of mode 0600 and off every command line, and supervision: a role or the
nats-server killed with SIGKILL is restarted and reported, and the platform still finishes jobs."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import nats
import pytest

from gateway.client import GatewayClient, catalog_requests
from mephisto_sed.api.v1 import mephisto_pb2 as pb
from mephisto_sed.catalog import read_catalog
from mephisto_sed.cli import example_catalog_path
from services.platform import UpProcess

from .platform_helpers import wait_jobs


@pytest.fixture
def up(tmp_path):
    env = {"MEPHISTO_ACK_WAIT": "3", "MEPHISTO_USE_KNOWLEDGE": "0", "MEPHISTO_DRAIN_SECONDS": "10"}
    env["MEPHISTO_KNOWLEDGE"] = str(tmp_path / "knowledge")
    u = UpProcess(tmp_path / "platform", env=env)
    yield u
    assert u.stop() == 0


async def _connect_anonymously(url: str) -> str:
    try:
        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=5, max_reconnect_attempts=0)
    except Exception as exc:  # noqa: BLE001 - any refusal counts; the test reads its text
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
    token = up.token
    gateway_cmdline = Path(f"/proc/{up.pids()['gateway[0]']}/cmdline").read_bytes().decode()
    assert token not in gateway_cmdline  # tokens travel in the environment, not on a command line
    assert "uthorization" in asyncio.run(_connect_anonymously(url))  # nats-server refuses strangers

    os.kill(up.pids()["executor[0]"], signal.SIGKILL)
    up.wait_for("executor[0] exited (killed by SIGKILL)")
    up.wait_for("executor[0] restarted")
    os.kill(up.pids()["nats-server"], signal.SIGKILL)
    up.wait_for("nats-server exited (killed by SIGKILL)")
    up.wait_for("nats-server restarted")

    cat = read_catalog(example_catalog_path()).select(slice(0, 2))
    c = GatewayClient(up.gateway, token)
    req = catalog_requests(cat, list(cat.bands), pb.Budget(max_models=20_000, max_steps=6))[0]
    reply = wait_jobs(c, list(c.submit(req, timeout=120).job_ids))
    assert sorted(r.source_id for r in reply.results) == ["mock000", "mock001"]
    assert up.proc.poll() is None


def test_up_starts_whatever_passwords_an_older_data_dir_holds(tmp_path):
    """nats-server parses a password taken from the environment as a config token: "8Hx…" is read
    as a number and the server refuses to start (a random password failed this way now and then).
    `up` makes passwords that parse as strings and replaces ones that would not."""
    import json

    from services.common.access import USERS

    data = tmp_path / "platform"
    data.mkdir()
    (data / "nats-users.json").write_text(json.dumps({u: "8Hx-old" for u in USERS}))
    env = {"MEPHISTO_USE_KNOWLEDGE": "0", "MEPHISTO_KNOWLEDGE": str(tmp_path / "knowledge")}
    up = UpProcess(data, env=env)
    try:
        up.wait_for("Ctrl-C stops everything.")
        users = json.loads((data / "nats-users.json").read_text())
        assert all(p.startswith("mph") and p[3:].isalnum() for p in users.values())
    finally:
        assert up.stop() == 0
