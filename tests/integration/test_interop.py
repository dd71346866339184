"""What other v2 clients expect: gRPC raw output contents, curl's form type, the protocol's versioned paths."""

from __future__ import annotations

import json
import shutil
import subprocess

import grpc
import httpx
import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from sklearn.datasets import load_iris

from tests.support.payloads import V2
from tests.support.server import Server

ROWS = load_iris().data[[0, 75, 149]].astype(np.float32)


@pytest.fixture(params=["lean", "kserve"])
def either_route(request: pytest.FixtureRequest) -> Server:
    server: Server = request.getfixturevalue("iris_server" if request.param == "lean" else "kserve_route_server")
    return server


def test_grpc_outputs_arrive_as_raw_contents_like_triton(iris_server: Server) -> None:
    tensor = pb.ModelInferRequest.InferInputTensor(name="features", datatype="FP32", shape=list(ROWS.shape))
    request = pb.ModelInferRequest(model_name="iris", inputs=[tensor], raw_input_contents=[ROWS.tobytes()])
    with grpc.insecure_channel(iris_server.grpc_target) as channel:
        response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    # A client that reads only raw_output_contents (tritonclient does) gets every output from it.
    assert [o.name for o in response.outputs] == ["label", "probabilities"]
    assert not any(o.HasField("contents") for o in response.outputs)
    assert len(response.raw_output_contents) == len(response.outputs)
    labels = np.frombuffer(response.raw_output_contents[0], "<i8").reshape(list(response.outputs[0].shape))
    probabilities = np.frombuffer(response.raw_output_contents[1], "<f4").reshape(list(response.outputs[1].shape))
    assert labels.tolist() == [0, 1, 2]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_curl_form_type_is_read_as_json(either_route: Server) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    # Exactly what `curl -d '<json>' URL` sends: the form content type.
    command = [curl, "-sS", "-d", json.dumps(V2), either_route.url + "/v2/models/iris/infer"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(result.stdout)["outputs"][0]["data"] == [2], result.stdout


def test_form_type_over_httpx_on_both_routes(either_route: Server) -> None:
    response = httpx.post(
        either_route.url + "/v2/models/iris/infer",
        content=json.dumps(V2).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [2]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v2/models/iris/versions/1/infer", 200),
        ("GET", "/v2/models/iris/versions/1/ready", 200),
        ("GET", "/v2/models/iris/versions/1", 200),
        ("POST", "/v2/models/iris/versions/2/infer", 404),
        ("GET", "/v2/models/iris/versions/2", 404),
        ("GET", "/v2/models/roses/versions/1", 404),
    ],
)
def test_versioned_paths(either_route: Server, method: str, path: str, status: int) -> None:
    response = httpx.request(method, either_route.url + path, json=V2 if method == "POST" else None)
    assert response.status_code == status, response.text
    if path == "/v2/models/iris/versions/1":
        assert response.json()["name"] == "iris"
    if status == 404 and "/iris/" in path:
        assert response.json()["error"] == "model 'iris' has no version '2'; this server has '1'"
