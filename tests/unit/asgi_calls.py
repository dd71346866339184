"""Call an ASGI layer in-process: a request as an ASGI server delivers it, the answer as it was sent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from predictor.asgi.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    chunks_read: int  # how many body messages the app (and the layers in it) asked for


@dataclass
class Inner:
    """The app behind the layer under test: records what reached it and answers 200 with the body."""

    scopes: list[Scope] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


def http_scope(
    method: str = "POST", path: str = "/v2/models/iris/infer", headers: Sequence[tuple[bytes, bytes]] = ()
) -> Scope:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "headers": list(headers)}


def call(app: ASGIApp, scope: Scope, chunks: Sequence[bytes] = (b"",)) -> Answer:
    """Deliver ``chunks`` as the body (more_body on all but the last); collect what the app sends."""
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        if not pending:
            return {"type": "http.disconnect"}
        read += 1
        return pending.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers: dict[bytes, bytes] = {}
    for key, value in start.get("headers", []):
        headers[bytes(key)] = bytes(value)
    return Answer(start["status"], headers, body, read)


def json_error(answer: Answer) -> Any:
    import orjson

    return orjson.loads(answer.body)["error"]
