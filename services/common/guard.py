"""The gRPC guard: one interceptor in front of every Mephisto service.

For each call to a guarded service, in this order: the bearer token is checked before the
request is even parsed; a request that is not the protobuf message it should be is answered
``INVALID_ARGUMENT``; a message-bus outage (NATS unreachable, a JetStream timeout) is
``UNAVAILABLE``, which clients retry; any other failure is ``INTERNAL`` with one log line.
No answer carries an exception class, a traceback or a server path.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc
import nats.errors
import nats.js.errors

log = logging.getLogger(__name__)

# The message bus is down or overloaded: the caller should retry (with the same idempotency key)
BUS_UNAVAILABLE: tuple[type[BaseException], ...] = (
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.NoServersError,
    nats.errors.NoRespondersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.NoStreamResponseError,
    asyncio.TimeoutError,
)
UNAVAILABLE_MESSAGE = "the message bus (NATS) is unavailable; retry later (with the same idempotency key)"
_UNDECODABLE = object()


class Guard(grpc.aio.ServerInterceptor):
    """Guards the calls to ``services`` (fully qualified names); health and reflection pass.
    ``tokens`` None: no authentication (a role reached only inside the deployment)."""

    def __init__(self, services: Iterable[str], tokens: Iterable[str] | None = None):
        self.services = {f"/{s}/" for s in services}
        self.tokens = None if tokens is None else [t.encode() for t in tokens]

    def authorized(self, details: grpc.HandlerCallDetails) -> bool:
        if self.tokens is None:
            return True
        md = dict(details.invocation_metadata or ())
        auth = md.get("authorization", "")
        token = auth[7:].encode() if isinstance(auth, str) and auth.lower().startswith("bearer ") else b""
        return bool(token) and any(hmac.compare_digest(token, t) for t in self.tokens)

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or not any(details.method.startswith(s) for s in self.services):
            return handler
        if not self.authorized(details):
            return _deny(handler)
        return _guarded(handler, details.method)


def _message_name(handler: Any) -> str:
    cls = getattr(handler.request_deserializer, "__self__", None)
    return getattr(getattr(cls, "DESCRIPTOR", None), "full_name", "request message")


def _deny(handler: Any) -> Any:
    """Answer UNAUTHENTICATED without parsing the request (its bytes are never looked at)."""

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
        yield  # pragma: no cover

    def ignore(_data: bytes) -> None:
        return None

    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(stream, ignore, handler.response_serializer)
    return grpc.unary_unary_rpc_method_handler(unary, ignore, handler.response_serializer)


async def _fail(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
    if isinstance(exc, BUS_UNAVAILABLE):
        log.warning("%s: message bus unavailable (%s)", method, type(exc).__name__)
        await context.abort(grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MESSAGE)
    log.error("%s failed: %s: %s", method, type(exc).__name__, exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error (the service's log has the details)")


def _guarded(handler: Any, method: str) -> Any:
    name = _message_name(handler)
    bad = f"request: not a valid {name}"

    def deserialize(data: bytes) -> Any:
        try:
            return handler.request_deserializer(data)
        except Exception:  # noqa: BLE001 - any decoding failure: answered as bad input below
            return _UNDECODABLE

    if handler.unary_unary is not None:

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if request is _UNDECODABLE:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, bad)
            try:
                return await handler.unary_unary(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure gets a status and one log line
                await _fail(context, method, exc)

        return grpc.unary_unary_rpc_method_handler(unary, deserialize, handler.response_serializer)

    if handler.unary_stream is not None:

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if request is _UNDECODABLE:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, bad)
            try:
                async for item in handler.unary_stream(request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure gets a status and one log line
                await _fail(context, method, exc)

        return grpc.unary_stream_rpc_method_handler(stream, deserialize, handler.response_serializer)
    return handler  # client- and bidi-streaming: none in the contract
