"""--auth_token_file on a real server: REST (both v2 routes, v1, metadata), gRPC, open probes, rotation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from tests.secret_volume import SecretVolume
from tests.support.auth import AUTH, GRPC_AUTH, TOKEN
from tests.support.models import run_server
from tests.support.payloads import V2, infer_request
from tests.support.server import Server

PROTECTED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v2/models/iris/infer", V2),
    ("POST", "/v2/models/iris/versions/1/infer", V2),
    ("POST", "/v1/models/iris:predict", {"instances": [[6.7, 3.0, 5.2, 2.3]]}),
    ("GET", "/v2/models/iris", None),
    ("GET", "/v2", None),
    ("GET", "/v2/models", None),
    ("GET", "/v1/models", None),
]
OPEN = ["/", "/v2/health/live", "/v2/health/ready", "/v2/models/iris/ready", "/v1/models/iris", "/metrics"]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED])
def test_inference_and_metadata_need_the_token(
    guarded_server: Server, method: str, path: str, body: dict[str, Any] | None
) -> None:
    url = guarded_server.url + path
    refused = httpx.request(method, url, json=body)
    assert refused.status_code == 401, refused.text
    assert refused.headers["www-authenticate"] == 'Bearer realm="servekit"'
    assert refused.json() == {"error": "this endpoint needs a bearer token: send 'Authorization: Bearer <token>'"}

    wrong = httpx.request(method, url, json=body, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Bearer realm="servekit", error="invalid_token"'

    accepted = httpx.request(method, url, json=body, headers=AUTH)
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize("path", OPEN)
def test_probes_and_metrics_stay_open(guarded_server: Server, path: str) -> None:
    response = httpx.get(guarded_server.url + path)
    assert response.status_code == 200, response.text


def test_grpc_needs_the_token_except_for_health(guarded_server: Server) -> None:
    with grpc.insecure_channel(guarded_server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        assert stub.ModelReady(pb.ModelReadyRequest(name="iris"), timeout=10).ready
        calls = [
            (stub.ModelInfer, infer_request()),
            (stub.ModelMetadata, pb.ModelMetadataRequest(name="iris")),
            (stub.ServerMetadata, pb.ServerMetadataRequest()),
        ]
        for call, message in calls:
            for metadata in [(), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)]:
                with pytest.raises(grpc.RpcError) as caught:
                    call(message, metadata=metadata, timeout=10)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert call(message, metadata=GRPC_AUTH, timeout=10) is not None
        answer = stub.ModelInfer(infer_request(), metadata=GRPC_AUTH, timeout=10)
        assert answer.model_name == "iris"


@pytest.fixture(scope="module")
def rotating(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[tuple[Server, SecretVolume]]:
    volume = SecretVolume(tmp_path_factory.mktemp("rotating-secret"))
    volume.write("first-token\n")
    server = Server(iris_dir, "iris", args=["--auth_token_file", str(volume.path)])
    for running in run_server(tmp_path_factory, server):
        yield running, volume


def status_with(server: Server, token: str) -> int:
    response = httpx.post(f"{server.url}/v2/models/iris/infer", json=V2, headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def test_a_rotated_secret_takes_effect_without_a_restart(rotating: tuple[Server, SecretVolume]) -> None:
    server, volume = rotating
    assert status_with(server, "first-token") == 200
    volume.write("second-token\n")  # kubelet's symlink swap: the mounted path itself never changes
    deadline = time.monotonic() + 10
    while status_with(server, "second-token") != 200:
        assert time.monotonic() < deadline, "the new token was not accepted within 10 s"
        time.sleep(0.2)
    assert status_with(server, "first-token") == 401
    # With grpc too: the same token file serves both.
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        stub.ModelInfer(infer_request(), metadata=(("authorization", "Bearer second-token"),), timeout=10)
    assert server.process is not None and server.process.poll() is None
