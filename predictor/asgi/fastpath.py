"""The lean v2 REST inference path: a thin ASGI app in front of KServe's FastAPI app.

KServe's v2 endpoint runs every request through FastAPI's middleware stack (timing with a
``getrusage`` call and two log lines per request, exception and telemetry layers), validates
the body into pydantic models, converts it to ``InferRequest``, walks the DataPlane and
validates the response into pydantic again: most of a millisecond around a 76 us model.

``POST /v2/models/<this model>/infer`` is answered here instead: the same protocol (JSON and
the binary tensor extension), the same checks, batcher and metrics as the KServe path, decoded
with orjson straight into numpy. Every other request (health, metadata, v1, other models,
versioned paths) goes to KServe's app untouched, and gRPC never passes here. Request ids, auth
and the body limit sit in front of both routes (http_app.py).
"""

from __future__ import annotations

import logging
import time

import orjson

from predictor.asgi.interop import FORM_TYPE
from predictor.asgi.types import JSON_CONTENT, ASGIApp, Receive, Scope, Send
from predictor.monitoring import tracing
from predictor.protocol.errors import ERROR_ANSWERS, http_status, message_of, rest_answer
from predictor.protocol.v2_codec import BINARY_HEADER, decode_request, encode_response, parse_body
from predictor.protocol.validation import InputError, select_outputs, validate_inputs
from predictor.server import kserve_compat
from predictor.server.model import ServingModel

logger = logging.getLogger(__name__)

# Bodies declared as anything else are refused with 415; no content type at all, or curl's
# default form type, is read as JSON.
ACCEPTED_MEDIA_TYPES = frozenset({b"application/json", b"application/octet-stream", FORM_TYPE, b""})
_JSON = [JSON_CONTENT]


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or []


# The model's failures this route answers itself, as KServe's route would (the rest are bugs: 500).
_ANSWERED = tuple(kind for kind, _answer in ERROR_ANSWERS)


class LeanInferApp:
    """ASGI app: this model's v2 infer path is served here, everything else by ``inner``."""

    def __init__(self, inner: ASGIApp, model: ServingModel) -> None:
        self.inner = inner
        self.model = model
        self.path = f"/v2/models/{model.name}/infer"
        self._predict_seconds = kserve_compat.predict_seconds(model.name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == self.path:
            await self.infer(scope, receive, send)
        else:
            await self.inner(scope, receive, send)

    async def infer(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self.model.metrics.counted_request("v2") as answer:
            try:
                headers = dict(scope["headers"])
                media_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
                if media_type not in ACCEPTED_MEDIA_TYPES:
                    shown = media_type.decode(errors="replace")
                    raise HTTPError(415, f"content type {shown!r} is not supported; send application/json")
                body = await read_body(receive)
                payload, extra_headers = await self.answer(body, headers)
            except HTTPError as exc:
                answer.code, payload, extra_headers = (
                    exc.status,
                    orjson.dumps({"error": str(exc)}),
                    [*_JSON, *exc.headers],
                )
            except Exception as exc:  # a bug of ours: the model's own failures are HTTPErrors by now
                logger.exception("inference failed for model %s", self.model.name)
                answer.code, payload = 500, orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
                extra_headers = _JSON
            # A declared length spares the server chunked framing and lets every client read the answer in one go.
            headers_out = [*extra_headers, (b"content-length", str(len(payload)).encode())]
            await send({"type": "http.response.start", "status": answer.code, "headers": headers_out})
            await send({"type": "http.response.body", "body": payload})

    async def answer(self, body: bytes, headers: dict[bytes, bytes]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        spec = self.model.spec
        binary_length = headers.get(BINARY_HEADER.encode())
        try:
            with tracing.span("decode"):
                document, binary = parse_body(body, None if binary_length is None else binary_length.decode())
                request = decode_request(document, binary)
                inputs = validate_inputs(spec, request.tensors, len(body))
                selected = select_outputs(spec, request.requested_outputs)
        except InputError as exc:
            raise HTTPError(400, str(exc)) from None
        model_start = time.perf_counter()
        try:
            results = await self.model.infer_arrays(inputs, request.request_id)
        except _ANSWERED as exc:
            raise _as_http_error(exc) from None
        self._predict_seconds.observe(time.perf_counter() - model_start)
        with tracing.span("encode"):
            payload, header_length = encode_response(
                self.model.name,
                spec.version,
                self.model.response_id(request.request_id),
                [(name, self.model.output_datatypes[name], results[name]) for name in selected],
                set(selected) if request.binary_default else request.binary_outputs,
            )
        if header_length is None:
            return payload, _JSON
        return payload, [
            (b"content-type", b"application/octet-stream"),
            (b"inference-header-content-length", str(header_length).encode()),
        ]


def _as_http_error(exc: Exception) -> HTTPError:
    status, message, headers = rest_answer(exc) or (http_status(exc), message_of(exc), {})
    return HTTPError(status, message, [(k.encode(), v.encode()) for k, v in headers.items()])


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(400, "the client closed the connection before sending the whole body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
