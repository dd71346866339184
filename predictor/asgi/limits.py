"""The REST body limit (--max_body_bytes; grpc_server.py gives gRPC the same receive limit, and
validation.check_fits_body refuses tensor shapes larger than a body could hold).

KServe's Python server reads any body whole, so one client can make a pod allocate gigabytes
before a check runs. Here a body is refused with 413 as soon as it is known to be too large: at
once from its Content-Length, or while it streams in (chunked transfer encoding declares no
length). HTTP/1.1 delivers at most the declared length as the body, so a Content-Length that
lies low cannot smuggle more past this layer.
"""

from __future__ import annotations

from predictor.asgi.types import ASGIApp, Message, Receive, Scope, Send, header, send_error

# The rest of the body is never read: closing the connection stops the client sending it.
_CLOSE = [(b"connection", b"close")]


def too_large(size: str, limit: int) -> str:
    return f"the request body ({size}) is larger than the {limit} bytes this server accepts (--max_body_bytes)"


class BodyLimitApp:
    """ASGI layer: reads the body up to ``max_bytes`` and hands it on in one piece, or answers 413.

    Reading here (instead of counting as the inner app reads) means an oversized body never
    reaches KServe's handlers half-read, where a refusal would surface as an unrelated error.
    """

    def __init__(self, inner: ASGIApp, max_bytes: int) -> None:
        self.inner = inner
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_error(send, 400, f"Content-Length must be a number of bytes, got {declared!r}")
                return
            if int(declared) > self.max_bytes:
                await send_error(send, 413, too_large(f"{int(declared)} bytes", self.max_bytes), _CLOSE)
                return
        try:
            body = await self._read(receive)
        except _ClientLeft:
            return  # nobody to answer
        if body is None:
            await send_error(send, 413, too_large(f"more than {self.max_bytes} bytes", self.max_bytes), _CLOSE)
            return
        await self.inner(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it grows past the limit (the rest is never read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientLeft
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _ClientLeft(Exception):
    """The connection closed before the whole body arrived."""


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body read already, then passes on (a later disconnect, say)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
