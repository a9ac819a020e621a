"""Create the JetStream streams and key-value buckets, then exit: ``python -m services.setup``.

Deployments run it once as the ``setup`` NATS user (a compose one-shot service, a Kubernetes Job)
and start the roles with ``MEPHISTO_NATS_SETUP=0``, so no role needs the right to create or
change streams. Idempotent: what exists is left as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from .common.access import SETUP_USER, inbox_prefix
from .common.bus import BUCKETS, STREAM_ALERTS, STREAM_DLQ, STREAM_EVENTS, STREAM_WORK, Bus
from .common.settings import Settings, refuse_dev_credentials


async def run(url: str, user: str, password: str, wait_s: float, replicas: int = 1) -> dict[str, object]:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            bus = await Bus.connect(
                url,
                "mephisto-setup",
                setup=True,
                user=user,
                password=password,
                inbox_prefix=inbox_prefix(SETUP_USER),
                replicas=replicas,
            )
            break
        except Exception as exc:  # noqa: BLE001 - NATS still starting (compose, Kubernetes): wait for it
            if time.monotonic() > deadline:
                raise SystemExit(f"cannot set up NATS at {url}: {exc}") from None
            await asyncio.sleep(1.0)
    try:
        streams = [STREAM_WORK, STREAM_EVENTS, STREAM_DLQ, STREAM_ALERTS]
        for name in streams:
            await bus.js.stream_info(name)  # raises if it could not be created
        return {"nats": url, "streams": streams, "buckets": list(BUCKETS), "replicas": replicas}
    finally:
        await bus.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m services.setup", description=__doc__.splitlines()[0])
    env = Settings("setup")  # NATS_URL, NATS_USER, NATS_PASSWORD, MEPHISTO_NATS_REPLICAS
    p.add_argument("--nats", default=env.nats_url, help="env NATS_URL")
    p.add_argument("--nats-user", default=env.nats_user, help="env NATS_USER (password: NATS_PASSWORD)")
    p.add_argument(
        "--replicas",
        type=int,
        default=env.nats_replicas,
        help="copies of each stream on a JetStream cluster (env MEPHISTO_NATS_REPLICAS)",
    )
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for NATS to come up")
    a = p.parse_args(argv)
    refuse_dev_credentials({"NATS_PASSWORD": env.nats_password})
    out = asyncio.run(run(a.nats, a.nats_user, env.nats_password, a.wait, a.replicas))
    print(json.dumps(out), file=sys.stdout, flush=True)


if __name__ == "__main__":
    main()
