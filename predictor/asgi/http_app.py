"""The ASGI app uvicorn serves: KServe's FastAPI app behind our layers, outermost first.

    RequestIdApp      x-request-id taken or made, echoed, in every log line about the request
    TracingApp        with OTEL_EXPORTER_OTLP_ENDPOINT: a span per inference/feedback request (traceparent continued)
    BearerAuthApp     with --auth_token_file: 401 unless open (health, readiness, metrics) or authenticated
    BodyLimitApp      413 past --max_body_bytes, before the body is read whole
    ModelVersionApp   the protocol's versioned paths served for the model's own version
    FeedbackApp       with --monitoring: POST /v2/models/<model>/feedback (ground truth)
    LeanInferApp      with --fast_path: this model's v2 REST infer, answered without FastAPI
    FormAsJsonApp     curl's form type read as JSON on KServe's v2 route
    KServe's app      everything else: health, metadata, v1, the v2 route with --no-fast_path

So both v2 routes get the same ids, auth and limits. KServe's ModelServer starts uvicorn with an
import string; ``install`` points it here.
"""

from __future__ import annotations

from predictor.asgi.auth import BearerAuthApp, TokenFile
from predictor.asgi.fastpath import LeanInferApp
from predictor.asgi.interop import FormAsJsonApp, ModelVersionApp
from predictor.asgi.limits import BodyLimitApp
from predictor.asgi.request_id import RequestIdApp
from predictor.asgi.types import ASGIApp
from predictor.monitoring import tracing
from predictor.server.model import ServingModel
from predictor.server.settings import PredictorSettings

IMPORT_STRING = "predictor.asgi.http_app:served_app"
served_app: ASGIApp | None = None


def build(kserve_app: ASGIApp, model: ServingModel, settings: PredictorSettings, tokens: TokenFile | None) -> ASGIApp:
    app: ASGIApp = FormAsJsonApp(kserve_app)
    if settings.fast_path:
        app = LeanInferApp(app, model)
    if model.monitor is not None:
        from predictor.monitoring.feedback_app import FeedbackApp

        app = FeedbackApp(app, model.name, model.monitor)
    app = ModelVersionApp(app, model.name, model.spec.version)
    app = BodyLimitApp(app, settings.max_body_bytes)
    if tokens is not None:
        app = BearerAuthApp(app, tokens)
    if tracing.enabled():
        app = tracing.TracingApp(app)
    return RequestIdApp(app)


def install(model: ServingModel, settings: PredictorSettings, tokens: TokenFile | None) -> None:
    """Serve KServe's app behind our layers from the next ModelServer start."""
    global served_app
    from predictor.server import kserve_compat

    served_app = build(kserve_compat.kserve_app(), model, settings, tokens)
    # KServe still configures its own app (routes, middleware, exception handlers) at start.
    kserve_compat.serve_asgi_app_from(IMPORT_STRING)
