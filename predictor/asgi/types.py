"""ASGI types and the two things every layer in front of KServe's app needs: a header, and an error answer.

The layers (request ids, bearer auth, body limit, the lean v2 route) are plain ASGI callables
rather than Starlette middleware: each costs one function call per request, and none of them
parses more of the request than it needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Iterable[tuple[bytes, bytes]]

JSON_CONTENT = (b"content-type", b"application/json")


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of request header ``name`` (lower case, as ASGI servers give them)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def send_error(send: Send, status: int, message: str, headers: Headers = ()) -> None:
    """Answer with ``{"error": message}``, the body shape KServe's own errors have."""
    body = orjson.dumps({"error": message})
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [JSON_CONTENT, length, *headers]})
    await send({"type": "http.response.body", "body": body})
