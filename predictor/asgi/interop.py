"""What other v2 REST clients expect that KServe does not do (gRPC's part is protocol/grpc_raw.py).

* REST: ``curl -d`` sends ``application/x-www-form-urlencoded``. KServe reads a v1 body of that
  type as JSON, but answers a v2 one with an error about the binary extension's header.
* REST: the protocol's versioned paths (``/v2/models/<name>/versions/<version>/...``, the only
  ones its OpenAPI document lists) get 501 from KServe. Here the model's own version is served
  as the unversioned path, and any other version is a 404 that names the one served.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from predictor.asgi.types import ASGIApp, Receive, Scope, Send, send_error

FORM_TYPE = b"application/x-www-form-urlencoded"
_VERSIONED = re.compile(r"/v2/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)(?P<rest>/ready|/infer)?")


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
