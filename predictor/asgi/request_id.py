"""Request ids: taken from ``x-request-id`` or made, echoed on the answer, and on every log line about it.

The id lives in a context variable for the length of one request. asyncio copies the context
into every task the request starts, so KServe's handlers, ours and the log formatter all read
the same id without passing it along; the batcher's worker is one task for all requests, so
its lines (about a batch, not a request) carry none.

Istio and most gateways already send ``x-request-id``; a client's id is kept when it is a
plausible one (visible ASCII, at most 128 characters), otherwise a new one replaces it, so a
hostile header cannot forge log lines or grow without bound.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, NamedTuple

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from predictor.asgi.types import ASGIApp, Message, Receive, Scope, Send, header

HEADER = "x-request-id"
_HEADER_BYTES = HEADER.encode()
_PLAUSIBLE = re.compile(rb"[!-~]{1,128}")

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
_random = random.Random()  # seeded from os.urandom; its own instance, so nobody's random.seed() repeats ids
os.register_at_fork(after_in_child=_random.seed)  # forked workers must not repeat each other's ids
logger = logging.getLogger(__name__)


class Metadatum(NamedTuple):
    """A metadata pair as grpc gives them: KServe's servicer reads trailing metadata by ``.key``/``.value``."""

    key: str
    value: str


def current() -> str | None:
    """The id of the request being handled, or None outside of one."""
    return REQUEST_ID.get()


def new_id() -> str:
    """32 random hex digits, the W3C trace-id format.

    Not uuid4(): that reads the OS's random source on every call, 3 us per request on the lean
    route; an id needs to be unique, not unpredictable, and 128 bits of Mersenne Twister
    (seeded from the OS at start) are.
    """
    return f"{_random.getrandbits(128):032x}"


def accept(given: bytes | str | None) -> tuple[str, bool]:
    """The id to use for a request that sent ``given``, and whether it is the client's own."""
    raw = given.encode() if isinstance(given, str) else given
    if raw is not None and _PLAUSIBLE.fullmatch(raw):
        return raw.decode("ascii"), True
    return new_id(), False


class RequestIdApp:
    """ASGI layer: sets the request's id, hands it on to KServe's app as a header, echoes it back."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        given = header(scope, _HEADER_BYTES)
        request_id, kept = accept(given)
        echoed = (_HEADER_BYTES, request_id.encode())
        if not kept:  # KServe's own latency line reads the header: give it the id the logs carry
            kept_headers = scope["headers"] if given is None else [h for h in scope["headers"] if h[0] != _HEADER_BYTES]
            scope["headers"] = [*kept_headers, echoed]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.inner(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


class RequestIdInterceptor(AsyncServerInterceptor):
    """gRPC: the id from ``x-request-id`` metadata or a new one, sent back in the trailing metadata.

    Every v2 gRPC method is unary, so the whole call runs inside ``intercept``. It also writes the
    call's per-request line, at debug only (KServe's own interceptor logs every call at info).
    """

    async def intercept(
        self, method: Callable[..., Any], request: Any, context: grpc.aio.ServicerContext, method_name: str
    ) -> Any:
        given = next((value for key, value in context.invocation_metadata() or () if key == HEADER), None)
        request_id, _ = accept(given)
        context.set_trailing_metadata((Metadatum(HEADER, request_id),))
        token = REQUEST_ID.set(request_id)
        start = time.perf_counter()
        try:
            return await method(request, context)
        finally:
            logger.debug("grpc %s answered in %.2f ms", method_name, (time.perf_counter() - start) * 1000)
            REQUEST_ID.reset(token)
