"""Runs one role: NATS connection, gRPC server, JetStream workers, graceful shutdown.

A role object provides ``service_names`` (fully qualified gRPC names), ``add_to_server(server)``,
``workers()`` -> [(subject, handler)], optional ``start()``/``close()`` coroutines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from grpc_health.v1 import health_pb2

from . import telemetry
from .access import ACCESS, inbox_prefix
from .bus import Bus, TopologyMissing, Worker
from .grpc_server import start_server
from .guard import Guard
from .settings import Settings

log = logging.getLogger(__name__)


def configure_logging(role: str, level: str = "INFO") -> None:
    """JSON lines on stderr: one object per record, easy to ship and grep."""

    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            out = {"ts": round(record.created, 3), "level": record.levelname, "role": role, "msg": record.getMessage()}
            if record.exc_info:
                out["exc"] = self.formatException(record.exc_info)
            return json.dumps(out)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[handler], force=True)
    logging.getLogger("nats").setLevel(logging.WARNING)


async def serve(settings: Settings, make_role: Any, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop``), then drain in-flight work and exit."""
    telemetry.setup(f"mephisto-{settings.role}", metrics_port=settings.metrics_port)
    telemetry.start_counters(settings.role)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    connecting = asyncio.create_task(
        Bus.connect(
            settings.nats_url,
            f"mephisto-{settings.role}",
            setup=settings.nats_setup,
            buckets=ACCESS[settings.role].buckets,
            user=settings.nats_user,
            password=settings.nats_password,
            inbox_prefix=inbox_prefix(settings.role),
        )
    )
    log.info("%s: connecting to NATS at %s (SIGTERM stops it)", settings.role, settings.nats_url)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not connecting.done():  # SIGTERM while NATS is still unreachable: nothing to drain
        connecting.cancel()
        log.info("%s: stopped before NATS was reached at %s", settings.role, settings.nats_url)
        return
    stopping.cancel()
    bus = connecting.result()
    role = make_role(bus, settings)
    if hasattr(role, "start"):
        await role.start()
    tls = None
    if settings.tls_cert:
        tls = (Path(settings.tls_cert).read_bytes(), Path(settings.tls_key).read_bytes())
    server, port, health = await start_server(
        settings.grpc_host,
        settings.grpc_port,
        [role.add_to_server],
        role.service_names,
        interceptors=[Guard(role.service_names, settings.tokens)],
        max_message_mb=settings.max_message_mb,
        tls=tls,
    )
    if not settings.tokens:
        log.info("%s: no MEPHISTO_ROLE_TOKENS: its gRPC API answers UNAUTHENTICATED (health stays open)", settings.role)
    if settings.port_file:
        Path(settings.port_file).write_text(str(port))
    print(
        json.dumps({"role": settings.role, "grpc": f"{settings.grpc_host}:{port}", "nats": settings.nats_url}),
        flush=True,
    )
    workers = [
        Worker(bus, rest[0] if rest else settings.role, subject, handler, settings.ack_wait, settings.max_deliver)
        for subject, handler, *rest in role.workers()
    ]
    tasks = [asyncio.create_task(w.run(stop, settings.concurrency)) for w in workers]
    tasks += [asyncio.create_task(t) for t in getattr(role, "background", lambda s: [])(stop)]
    await stop.wait()
    log.info("%s: shutting down, draining in-flight work", settings.role)
    for name in ["", *role.service_names]:
        await health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    # workers stop fetching and finish the message in hand (acked when its results are published)
    done, pending = await asyncio.wait(tasks, timeout=settings.drain_seconds) if tasks else (set(), set())
    for t in pending:
        t.cancel()
    log.debug("%s: workers stopped (%d still running, cancelled)", settings.role, len(pending))
    await server.stop(grace=5.0)
    log.debug("%s: gRPC server stopped", settings.role)
    if hasattr(role, "close"):
        await role.close()
    await bus.close()
    telemetry.shutdown()
    log.info("%s: stopped", settings.role)


def main(role_name: str, make_role: Any, argv: list[str] | None = None) -> None:
    settings = Settings.parse(role_name, argv)
    configure_logging(role_name, settings.log_level)
    try:
        asyncio.run(serve(settings, make_role))
    except TopologyMissing as exc:  # a deployment's setup job has not run yet: say so, exit 1
        raise SystemExit(str(exc)) from None
