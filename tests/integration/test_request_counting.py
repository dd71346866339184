"""Every path a request can take is counted in servekit_requests_total exactly once, under the
protocol and status code it was answered with (ModelMetrics.counted_request is the one counter)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import Server

ROW = [5.1, 3.5, 1.4, 0.2]
V2_GOOD = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": ROW}]}
V2_BAD = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3], "data": ROW[:3]}]}
Counts = dict[tuple[str, str], float]


def request_counts(server: Server) -> Counts:
    """servekit_requests_total of the iris model, by (protocol, code)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {
        (sample.labels["protocol"], sample.labels["code"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "servekit_requests_total" and sample.labels.get("model") == "iris"
    }


def grpc_infer(server: Server, shape: list[int]) -> grpc.StatusCode:
    contents = pb.InferTensorContents(fp32_contents=ROW[: shape[1]])
    tensor = pb.ModelInferRequest.InferInputTensor(name="features", datatype="FP32", shape=shape, contents=contents)
    with grpc.insecure_channel(server.grpc_target) as channel:
        try:
            pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
                pb.ModelInferRequest(model_name="iris", inputs=[tensor]), timeout=10
            )
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def post(server: Server, path: str, body: object, status: int, **kwargs: object) -> None:
    response = httpx.post(f"{server.url}{path}", json=body, timeout=10, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text


def v2(server: Server, body: object, status: int) -> None:
    post(server, "/v2/models/iris/infer", body, status)


CASES: dict[str, tuple[str, Callable[[Server], None], str, str]] = {
    # name: (server fixture, one request, protocol, code)
    "fast-path-v2": ("iris_server", lambda s: v2(s, V2_GOOD, 200), "v2", "200"),
    "fast-path-v2-bad-input": ("iris_server", lambda s: v2(s, V2_BAD, 400), "v2", "400"),
    "fast-path-v2-bad-type": (
        "iris_server",
        lambda s: post(s, "/v2/models/iris/infer", None, 415, content=b"x", headers={"content-type": "text/csv"}),
        "v2",
        "415",
    ),
    "kserve-route-v2": ("kserve_route_server", lambda s: v2(s, V2_GOOD, 200), "v2", "200"),
    "kserve-route-v2-bad-input": ("kserve_route_server", lambda s: v2(s, V2_BAD, 400), "v2", "400"),
    "kserve-route-v1": (
        "iris_server",
        lambda s: post(s, "/v1/models/iris:predict", {"instances": [ROW]}, 200),
        "v1",
        "200",
    ),
    "grpc": ("iris_server", lambda s: assert_grpc(s, [1, 4], grpc.StatusCode.OK), "grpc", "200"),
    "grpc-bad-input": (
        "iris_server",
        lambda s: assert_grpc(s, [1, 3], grpc.StatusCode.INVALID_ARGUMENT),
        "grpc",
        "400",
    ),
}


def assert_grpc(server: Server, shape: list[int], expected: grpc.StatusCode) -> None:
    assert grpc_infer(server, shape) == expected


@pytest.mark.parametrize("case", list(CASES))
def test_each_path_counts_a_request_once(case: str, request: pytest.FixtureRequest) -> None:
    fixture, send, protocol, code = CASES[case]
    server: Server = request.getfixturevalue(fixture)
    before = request_counts(server)
    send(server)
    after = request_counts(server)
    changed = {key: after[key] - before.get(key, 0.0) for key in after if after[key] != before.get(key, 0.0)}
    assert changed == {(protocol, code): 1.0}
