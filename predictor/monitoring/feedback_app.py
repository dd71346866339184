"""``POST /v2/models/<model>/feedback``: the ASGI layer that takes ground truth (see feedback.py).

It sits with the lean infer route, behind the request-id, auth and body-limit layers, so feedback
is authenticated and bounded as inference is; every other request passes on untouched.
"""

from __future__ import annotations

import orjson

from predictor.asgi.types import JSON_CONTENT, ASGIApp, Receive, Scope, Send, send_error
from predictor.monitoring.monitor import ModelMonitor


class FeedbackApp:
    """ASGI layer: this model's feedback path is answered here, everything else by ``inner``."""

    def __init__(self, inner: ASGIApp, model_name: str, monitor: ModelMonitor) -> None:
        self.inner = inner
        self.monitor = monitor
        self.path = f"/v2/models/{model_name}/feedback"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.inner(scope, receive, send)
            return
        if scope["method"] != "POST":
            await send_error(send, 405, f"{self.path} takes POST, got {scope['method']}", [(b"allow", b"POST")])
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            await send_error(send, 400, f"feedback is not valid JSON: {exc}")
            return
        answer = await self.monitor.feedback(document)
        payload = orjson.dumps(answer.body)
        headers = [JSON_CONTENT, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
