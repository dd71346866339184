"""The lean v2 REST inference route, mounted in front of KServe's own.

KServe's v2 endpoint validates the body into pydantic models, converts it to ``InferRequest``,
walks the DataPlane and validates the response into pydantic again: several hundred
microseconds before and after the model. This route speaks the same protocol on the same path
of the same ModelServer app, but decodes with orjson straight into numpy, shares the model's
checks and batcher, and encodes numpy arrays natively. Everything else (health, metadata, v1,
gRPC, other models, versioned paths) stays with KServe.
"""

from __future__ import annotations

import time
import uuid

from fastapi import FastAPI
from kserve.errors import InvalidInput, ModelNotFound
from kserve.metrics import PREDICT_HIST_TIME
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from predictor.model import ServingModel, status_code
from predictor.v2_codec import BINARY_HEADER, decode_request, encode_response, parse_body
from predictor.validation import InputError, select_outputs, validate_inputs

JSON_TYPES = ("application/json", "application/octet-stream", "")


def make_infer_endpoint(model: ServingModel):  # type: ignore[no-untyped-def]
    predict_seconds = PREDICT_HIST_TIME.labels(model_name=model.name)
    outputs_by_name = {o.name: o for o in model.spec.outputs}

    async def infer(request: Request) -> Response:
        name = request.path_params["model_name"]
        if name != model.name:
            raise ModelNotFound(name)
        start = time.perf_counter()
        code = 500
        try:
            media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media_type not in JSON_TYPES:
                code = 415
                return JSONResponse(
                    {"error": f"content type {media_type!r} is not supported; send application/json"},
                    status_code=415,
                )
            body = await request.body()
            try:
                document, binary = parse_body(body, request.headers.get(BINARY_HEADER))
                decoded = decode_request(document, binary)
                inputs = validate_inputs(model.spec, decoded.tensors)
                selected = select_outputs(model.spec, decoded.requested_outputs)
            except InputError as exc:
                raise InvalidInput(str(exc)) from None
            model_start = time.perf_counter()
            results = await model.infer_arrays(inputs)
            predict_seconds.observe(time.perf_counter() - model_start)
            binary_outputs = set(selected) if decoded.binary_default else decoded.binary_outputs
            payload, header_length = encode_response(
                model.name,
                model.spec.version,
                decoded.request_id or str(uuid.uuid4()),
                [(n, outputs_by_name[n].datatype, results[n]) for n in selected],
                binary_outputs,
            )
            code = 200
            if header_length is None:
                return Response(payload, media_type="application/json")
            return Response(
                payload,
                media_type="application/octet-stream",
                headers={"Inference-Header-Content-Length": str(header_length)},
            )
        except Exception as exc:
            code = status_code(exc)
            raise
        finally:
            model.metrics.observe_request("v2", code, time.perf_counter() - start)

    return infer


def install_fast_path(app: FastAPI, model: ServingModel) -> None:
    """Put the lean route first, so it wins over KServe's route for the same path."""
    route = Route("/v2/models/{model_name}/infer", make_infer_endpoint(model), methods=["POST"])
    app.router.routes.insert(0, route)
