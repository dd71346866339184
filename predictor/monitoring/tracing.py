"""OpenTelemetry tracing: on only when the standard ``OTEL_*`` variables name an OTLP endpoint.

KServe 0.21's ``spec.tracing`` injects ``OTEL_EXPORTER_OTLP_ENDPOINT`` (and its friends) into the
predictor. With an endpoint set (and neither ``OTEL_SDK_DISABLED=true`` nor
``OTEL_TRACES_EXPORTER=none``), every REST inference or feedback request gets a server span that
continues the caller's W3C ``traceparent``, with children ``decode``, ``queue wait``, ``model call``
and ``encode``; a batch processor thread exports them over OTLP (``http/protobuf``, or ``grpc``
when ``OTEL_EXPORTER_OTLP_PROTOCOL`` says so and its exporter is installed). The other standard
variables (service name, resource attributes, headers, batch delay) work as the SDK reads them.

The SDK comes with the ``tracing`` extra; without it a set endpoint is logged as a warning and
tracing stays off. Without an endpoint nothing of the SDK is imported, no ASGI layer is installed, and each stage
costs one call returning a shared null context. gRPC calls are not traced.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from predictor.asgi.types import ASGIApp, Message, Receive, Scope, Send

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SERVICE_NAME = "servekit-predictor"
_NULL: AbstractContextManager[Any] = contextlib.nullcontext()
logger = logging.getLogger(__name__)
_tracer: Any = None  # an opentelemetry Tracer once setup() turned tracing on


def wanted(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name) for name in ENDPOINT_VARIABLES)


def enabled() -> bool:
    return _tracer is not None


def setup(environ: Mapping[str, str] = os.environ) -> bool:
    """Turn tracing on if the environment asks for it; whether it is on.

    Tracing that cannot run (the SDK or the chosen exporter not installed, an unknown protocol) is
    logged as a warning and left off: KServe's ``spec.tracing`` sets the variables on every
    predictor, and a missing exporter must not stop a model from serving.
    """
    global _tracer
    if not wanted(environ):
        return False
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    ).strip() or "http/protobuf"
    if protocol not in ("http/protobuf", "grpc"):
        logger.warning("tracing off: OTEL_EXPORTER_OTLP_PROTOCOL=%r, expected http/protobuf or grpc", protocol)
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter,
            )
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        logger.warning(
            "tracing off: an OTLP endpoint is set but %s is not installed (pip install 'servekit[tracing]'%s)",
            exc.name,
            " and opentelemetry-exporter-otlp-proto-grpc" if protocol == "grpc" else "",
        )
        return False
    # Our name only where the user gave none: the SDK reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES itself.
    named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": SERVICE_NAME}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _tracer = provider.get_tracer("servekit.predictor")
    return True


def span(name: str) -> AbstractContextManager[Any]:
    """A child span of the request's, or a shared null context when tracing is off."""
    if _tracer is None:
        return _NULL
    return _tracer.start_as_current_span(name)  # type: ignore[no-any-return]


def record(name: str, start_ns: int, end_ns: int) -> None:
    """A finished child span with times measured elsewhere (the batcher's thread), if a request is traced."""
    if _tracer is None:
        return
    from opentelemetry import trace

    if not trace.get_current_span().is_recording():
        return  # not inside a traced request (gRPC)
    _tracer.start_span(name, start_time=start_ns).end(end_time=end_ns)


def traced_path(path: str) -> bool:
    return path.endswith(("/infer", ":predict", "/feedback"))


class TracingApp:
    """ASGI layer: a server span per inference or feedback request, continuing ``traceparent``."""

    def __init__(self, inner: ASGIApp) -> None:
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.inner = inner
        self._propagator = TraceContextTextMapPropagator()
        self._kind = SpanKind.SERVER

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not traced_path(scope["path"]):
            await self.inner(scope, receive, send)
            return
        from opentelemetry.trace import Status, StatusCode

        carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        parent = self._propagator.extract(carrier)
        method, path = scope["method"], scope["path"]
        attributes = {"http.request.method": method, "url.path": path}
        with _tracer.start_as_current_span(
            f"{method} {path}", context=parent, kind=self._kind, attributes=attributes
        ) as server_span:

            async def send_with_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    server_span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        server_span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.inner(scope, receive, send_with_status)
