"""Target (d): the practical limit. A bare ASGI app on uvicorn with orjson, no framework.

It does the same work as the predictor for one v2 JSON request: decode the body, make the FP32
array, call the estimator's ``predict`` and ``predict_proba`` (as the predictor's sklearn runtime
does, with sklearn's finiteness scan off after its own check), and encode the v2 response. No
routing table, no validation models, no middleware, no access log: what is left is the cost of
HTTP, JSON and the model, which no Python server on this machine will beat by much.

    python -m tests.bench.bare_asgi --model_dir DIR --model_name iris --port P
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from typing import Any

import joblib
import numpy as np
import orjson
import sklearn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON_HEADERS = [(b"content-type", b"application/json")]


def make_app(model: Any, model_name: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    infer_path = f"/v2/models/{model_name}/infer"
    ready_paths = {f"/v2/models/{model_name}/ready", "/v2/health/ready", "/v2/health/live"}

    async def respond(send: Send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def read_body(receive: Receive) -> bytes:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)

    def infer(body: bytes) -> bytes:
        request = orjson.loads(body)
        tensor = request["inputs"][0]
        if tensor.get("datatype") != "FP32":
            raise ValueError("expected an FP32 input")
        features = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        if not np.isfinite(features).all():
            raise ValueError("input has NaN or infinity")
        with sklearn.config_context(assume_finite=True):
            label = np.asarray(model.predict(features), dtype=np.int64)
            probabilities = np.asarray(model.predict_proba(features), dtype=np.float32)
        response = {
            "model_name": model_name,
            "id": request.get("id", ""),
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": list(label.shape), "data": label},
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": list(probabilities.shape),
                    "data": probabilities.ravel(),
                },
            ],
        }
        return orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == infer_path and scope["method"] == "POST":
            body = await read_body(receive)
            try:
                payload = infer(body)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                await respond(send, 400, orjson.dumps({"error": str(exc)}))
                return
            await respond(send, 200, payload)
        elif path in ready_paths:
            await respond(send, 200, b'{"ready":true}')
        else:
            await respond(send, 404, b'{"error":"not found"}')

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True, help="directory holding model.joblib")
    parser.add_argument("--model_name", default="iris")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    model = joblib.load(os.path.join(args.model_dir, "model.joblib"))
    app = make_app(model, args.model_name)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
