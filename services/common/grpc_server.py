"""gRPC servers with standard health checking and reflection, and trace context from metadata."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace

from . import telemetry
from .bus import PermanentError


async def start_server(
    host: str,
    port: int,
    add_servicers: list[Callable[[grpc.aio.Server], None]],
    service_names: list[str],
    interceptors: list[Any] | None = None,
    max_message_mb: float = 16.0,
    tls: tuple[bytes, bytes] | None = None,
) -> tuple[grpc.aio.Server, int, HealthServicer]:
    size = int(max_message_mb * 2**20)
    server = grpc.aio.server(
        interceptors=interceptors or [],
        options=[("grpc.max_receive_message_length", size), ("grpc.max_send_message_length", size)],
    )
    for add in add_servicers:
        add(server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = list(service_names) + [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
    reflection.enable_server_reflection(names + [reflection.SERVICE_NAME], server)
    address = f"{host}:{port}"
    if tls:
        bound = server.add_secure_port(address, grpc.ssl_server_credentials([(tls[1], tls[0])]))
    else:
        bound = server.add_insecure_port(address)
    await server.start()
    for name in ["", *service_names]:
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, bound, health


@contextlib.contextmanager
def server_span(name: str, context: grpc.aio.ServicerContext, **attrs: Any) -> Iterator[trace.Span]:
    """A SERVER span continuing the caller's trace (W3C ``traceparent`` in the metadata)."""
    md = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
    with telemetry.tracer().start_as_current_span(
        name, context=telemetry.extract(md), kind=trace.SpanKind.SERVER
    ) as span:
        for k, v in attrs.items():
            span.set_attribute(k, v)
        yield span


async def abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    """``context.abort``, which raises; typed so that checkers know nothing follows it."""
    await context.abort(code, details)
    raise AssertionError("context.abort returned")


async def answer(
    context: grpc.aio.ServicerContext, name: str, handler: Callable[[Any], Awaitable[Any]], request: Any, **attrs: Any
) -> Any:
    """Run a role's handler for a gRPC call: a SERVER span, and a PermanentError (bad input)
    becomes INVALID_ARGUMENT with its message, which names the field."""
    with server_span(name, context, **attrs):
        try:
            return await handler(request)
        except PermanentError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
