"""What other v2 clients expect that KServe does not do: gRPC raw output contents, curl's form type.

* gRPC: Triton answers ``ModelInfer`` with every output's bytes in ``raw_output_contents`` and
  no typed ``contents``; common v2 clients (tritonclient among them) read only that form and see
  empty arrays otherwise. KServe's ``InferResponse.to_grpc`` fills ``contents``. Raw bytes are
  also the cheaper encoding: one memcpy per output instead of a protobuf repeated field.
* REST: ``curl -d`` sends ``application/x-www-form-urlencoded``. KServe reads a v1 body of that
  type as JSON, but answers a v2 one with an error about the binary extension's header.
* REST: the protocol's versioned paths (``/v2/models/<name>/versions/<version>/...``, the only
  ones its OpenAPI document lists) get 501 from KServe. Here the model's own version is served
  as the unversioned path, and any other version is a 404 that names the one served.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable

import numpy as np
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

from predictor.asgi import ASGIApp, Receive, Scope, Send, send_error

FORM_TYPE = b"application/x-www-form-urlencoded"
_VERSIONED = re.compile(r"/v2/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)(?P<rest>/ready|/infer)?")


def raw_contents(array: np.ndarray, datatype: str) -> bytes:
    """A tensor's bytes as the v2 protocol lays them out: row-major, little-endian; BYTES elements
    each as a 4-byte little-endian length and the bytes (text as UTF-8)."""
    if datatype != "BYTES":
        return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    parts = []
    for element in array.ravel().tolist():
        data = element if isinstance(element, bytes) else str(element).encode()
        parts.append(struct.pack("<I", len(data)) + data)
    return b"".join(parts)


def grpc_infer_response(
    model_name: str, model_version: str, response_id: str, outputs: Iterable[tuple[str, str, np.ndarray]]
) -> pb.ModelInferResponse:
    """``ModelInferResponse`` with outputs (name, datatype, array) in ``raw_output_contents``."""
    tensors = []
    raw = []
    for name, datatype, array in outputs:
        tensors.append(pb.ModelInferResponse.InferOutputTensor(name=name, datatype=datatype, shape=array.shape))
        raw.append(raw_contents(array, datatype))
    return pb.ModelInferResponse(
        model_name=model_name, model_version=model_version, id=response_id, outputs=tensors, raw_output_contents=raw
    )


class FormAsJsonApp:
    """ASGI layer in front of KServe's app: a v2 infer POST of curl's form type is passed on as JSON."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and _is_v2_infer(scope["path"]):
            headers = scope["headers"]
            if _is_form_json(headers):
                scope = dict(scope)
                scope["headers"] = [(k, v) for k, v in headers if k != b"content-type"]
                scope["headers"].append((b"content-type", b"application/json"))
        await self.inner(scope, receive, send)


def _is_form_json(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Sent as a form, and not the binary extension (whose body is not JSON whatever its type)."""
    form = False
    for key, value in headers:
        if key == b"inference-header-content-length":
            return False
        form = form or (key == b"content-type" and value.split(b";")[0].strip().lower() == FORM_TYPE)
    return form


def _is_v2_infer(path: str) -> bool:
    return path.startswith("/v2/models/") and path.endswith("/infer")


class ModelVersionApp:
    """ASGI layer: ``/v2/models/<name>/versions/<version>[/ready|/infer]`` served as the unversioned path.

    One process serves one version of one model (the manifest's ``version``); a request for
    another version of it is answered 404. Other names pass on, for KServe's own 404.
    """

    def __init__(self, inner: ASGIApp, model_name: str, version: str) -> None:
        self.inner = inner
        self.model_name = model_name
        self.version = version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        match = _VERSIONED.fullmatch(path) if "/versions/" in path else None
        if match is None:
            await self.inner(scope, receive, send)
            return
        if match["name"] == self.model_name and match["version"] != self.version:
            message = f"model {self.model_name!r} has no version {match['version']!r}; this server has {self.version!r}"
            await send_error(send, 404, message)
            return
        unversioned = f"/v2/models/{match['name']}{match['rest'] or ''}"
        await self.inner({**scope, "path": unversioned, "raw_path": unversioned.encode()}, receive, send)
