"""v1 and v2 REST against the real server: kserve's own client and plain HTTP, both example models."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from sklearn.datasets import load_digits, load_iris

from tests.support.server import Server

IRIS = load_iris().data.astype(np.float32)


def v2_body(name: str, rows: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [{"name": name, "datatype": "FP32", "shape": list(rows.shape), "data": rows.ravel().tolist()}],
        **extra,
    }


def outputs_by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in body["outputs"]}


def test_v2_json_matches_the_estimator(iris_server: Server, iris_dir: Path) -> None:
    estimator = joblib.load(iris_dir / "model.joblib")
    rows = IRIS[::10]
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", json=v2_body("features", rows, id="req-1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "iris"
    assert body["id"] == "req-1"
    outputs = outputs_by_name(body)
    assert outputs["label"]["datatype"] == "INT64"
    assert outputs["label"]["shape"] == [len(rows)]
    assert outputs["label"]["data"] == estimator.predict(rows).tolist()
    assert outputs["probabilities"]["shape"] == [len(rows), 3]
    np.testing.assert_allclose(
        np.array(outputs["probabilities"]["data"]).reshape(-1, 3), estimator.predict_proba(rows), rtol=1e-5
    )


def test_v2_requested_outputs_only(iris_server: Server) -> None:
    body = v2_body("features", IRIS[:2], outputs=[{"name": "probabilities"}])
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", json=body)
    assert response.status_code == 200, response.text
    assert [o["name"] for o in response.json()["outputs"]] == ["probabilities"]


def test_v2_binary_extension_round_trip(iris_server: Server) -> None:
    rows = IRIS[:3]
    header = (
        b'{"inputs":[{"name":"features","datatype":"FP32","shape":[3,4],"parameters":{"binary_data_size":48}}],'
        b'"outputs":[{"name":"probabilities","parameters":{"binary_data":true}}]}'
    )
    response = httpx.post(
        f"{iris_server.url}/v2/models/iris/infer",
        content=header + rows.astype("<f4").tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    split = int(response.headers["inference-header-content-length"])
    import json

    meta = json.loads(response.content[:split])
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == 3 * 3 * 4
    probabilities = np.frombuffer(response.content[split:], dtype="<f4").reshape(3, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert probabilities.argmax(axis=1).tolist() == [0, 0, 0]


def test_kserve_rest_client_v2(iris_server: Server) -> None:
    async def call() -> Any:
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=10))
        try:
            tensor = InferInput("features", [2, 4], "FP32")
            tensor.set_data_from_numpy(IRIS[[0, 149]])  # binary by default: exercises the extension
            request = InferRequest(model_name="iris", infer_inputs=[tensor], request_id="kserve-client")
            return await client.infer(iris_server.url, request, model_name="iris")
        finally:
            await client.close()

    response = asyncio.run(call())
    labels = next(o for o in response.outputs if o.name == "label").as_numpy()
    assert labels.tolist() == [0, 2]


def test_v1_lists_and_objects(iris_server: Server) -> None:
    url = f"{iris_server.url}/v1/models/iris:predict"
    as_lists = httpx.post(url, json={"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})
    assert as_lists.status_code == 200, as_lists.text
    assert as_lists.json() == {"predictions": [0, 2]}
    shuffled = {"petal_width": 2.3, "sepal_length": 6.7, "petal_length": 5.2, "sepal_width": 3.0}
    as_objects = httpx.post(url, json={"instances": [shuffled]})
    assert as_objects.json() == {"predictions": [2]}


def test_kserve_rest_client_v1(iris_server: Server) -> None:
    async def call() -> Any:
        client = InferenceRESTClient(RESTConfig(protocol="v1", retries=0, timeout=10))
        try:
            return await client.infer(iris_server.url, {"instances": [[5.9, 3.0, 4.2, 1.5]]}, model_name="iris")
        finally:
            await client.close()

    assert asyncio.run(call()) == {"predictions": [1]}


def test_metadata_health_and_readiness(iris_server: Server) -> None:
    metadata = httpx.get(f"{iris_server.url}/v2/models/iris").json()
    assert metadata["name"] == "iris"
    assert metadata["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in metadata["outputs"]] == ["label", "probabilities"]
    assert httpx.get(f"{iris_server.url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{iris_server.url}/v2/models/iris/ready").json() == {"name": "iris", "ready": True}


def test_torch_digits_over_rest(digits_server: Server) -> None:
    digits = load_digits()
    rows = digits.data[:64].astype(np.float32)
    response = httpx.post(f"{digits_server.url}/v2/models/digits/infer", json=v2_body("pixels", rows))
    assert response.status_code == 200, response.text
    outputs = outputs_by_name(response.json())
    probabilities = np.array(outputs["probabilities"]["data"]).reshape(64, 10)
    assert outputs["label"]["data"] == probabilities.argmax(axis=1).tolist()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
    # A trained network, not noise: most of the training digits come back right.
    assert (np.array(outputs["label"]["data"]) == digits.target[:64]).mean() > 0.8
    v1 = httpx.post(f"{digits_server.url}/v1/models/digits:predict", json={"instances": rows[:3].tolist()})
    assert v1.json() == {"predictions": outputs["label"]["data"][:3]}


@pytest.mark.parametrize("rows", [1, 7, 64])
def test_v2_batch_sizes(iris_server: Server, iris_dir: Path, rows: int) -> None:
    estimator = joblib.load(iris_dir / "model.joblib")
    batch = IRIS[:rows]
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", json=v2_body("features", batch))
    assert outputs_by_name(response.json())["label"]["data"] == estimator.predict(batch).tolist()


def test_metrics_count_requests_by_protocol(iris_server: Server) -> None:
    httpx.post(f"{iris_server.url}/v2/models/iris/infer", json=v2_body("features", IRIS[:1]))
    text = httpx.get(f"{iris_server.url}/metrics").text
    assert 'servekit_requests_total{code="200",model="iris",protocol="v2"}' in text
    assert "servekit_batch_size_bucket" in text
    assert "servekit_queue_depth" in text


@pytest.mark.parametrize(
    ("body", "status"),
    [(v2_body("features", IRIS[:2]), 200), ({"inputs": [{"name": "features"}]}, 400)],
    ids=["answer", "error"],
)
def test_v2_lean_route_declares_its_length(iris_server: Server, body: dict[str, Any], status: int) -> None:
    """A declared Content-Length, not chunked framing: simple HTTP/1.1 clients (the benchmark's own
    Python load generator among them) read the answer in one go."""
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", json=body)
    assert response.status_code == status, response.text
    assert "transfer-encoding" not in response.headers
    assert response.headers["content-length"] == str(len(response.content))
