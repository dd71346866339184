"""v2 gRPC with kserve's InferenceGRPCClient: answers, metadata and error status codes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import numpy as np
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from sklearn.datasets import load_digits, load_iris

from tests.support.server import Server

T = TypeVar("T")


def with_client(server: Server, call: Callable[[InferenceGRPCClient], Awaitable[T]]) -> T:
    async def run() -> T:
        client = InferenceGRPCClient(server.grpc_target, retries=0, timeout=10)
        try:
            return await call(client)
        finally:
            await client.close()

    return asyncio.run(run())


def request(model: str, name: str, array: np.ndarray, datatype: str = "FP32") -> InferRequest:
    tensor = InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return InferRequest(model_name=model, infer_inputs=[tensor], request_id="grpc-test")


def test_grpc_infer_iris(iris_server: Server) -> None:
    rows = load_iris().data[[0, 75, 149]].astype(np.float32)
    response = with_client(iris_server, lambda c: c.infer(request("iris", "features", rows)))
    outputs = {o.name: o.as_numpy() for o in response.outputs}
    assert outputs["label"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert response.id == "grpc-test"


def test_grpc_infer_digits(digits_server: Server) -> None:
    rows = load_digits().data[:16].astype(np.float32)
    response = with_client(digits_server, lambda c: c.infer(request("digits", "pixels", rows)))
    outputs = {o.name: o.as_numpy() for o in response.outputs}
    assert outputs["label"].tolist() == outputs["probabilities"].argmax(axis=1).tolist()


def test_grpc_health_and_metadata(iris_server: Server) -> None:
    async def calls(client: InferenceGRPCClient) -> tuple[bool, bool]:
        return await client.is_server_live(), await client.is_model_ready("iris")

    assert with_client(iris_server, calls) == (True, True)
    # kserve's client has no metadata call; use the protocol's own stub.
    with grpc.insecure_channel(iris_server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="iris"), timeout=10)
    assert [(i.name, i.datatype, list(i.shape)) for i in metadata.inputs] == [("features", "FP32", [-1, 4])]
    assert [o.name for o in metadata.outputs] == ["label", "probabilities"]


@pytest.mark.parametrize(
    ("model", "name", "array", "datatype", "status", "fragment"),
    [
        ("iris", "features", np.zeros((2, 4)), "FP64", grpc.StatusCode.INVALID_ARGUMENT, "declared FP32"),
        ("iris", "petals", np.zeros((1, 4), np.float32), "FP32", grpc.StatusCode.INVALID_ARGUMENT, "unknown input"),
        ("iris", "features", np.zeros((1, 5), np.float32), "FP32", grpc.StatusCode.INVALID_ARGUMENT, "expected 4"),
        ("iris", "features", np.full((1, 4), np.nan, np.float32), "FP32", grpc.StatusCode.INVALID_ARGUMENT, "NaN"),
        ("nope", "features", np.zeros((1, 4), np.float32), "FP32", grpc.StatusCode.NOT_FOUND, "nope"),
    ],
)
def test_grpc_errors_carry_status_and_message(
    iris_server: Server,
    model: str,
    name: str,
    array: np.ndarray,
    datatype: str,
    status: grpc.StatusCode,
    fragment: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        with_client(iris_server, lambda c: c.infer(request(model, name, array, datatype)))
    assert caught.value.code() == status
    assert fragment in (caught.value.details() or "")
    # ... and the server keeps serving.
    ok = with_client(iris_server, lambda c: c.infer(request("iris", "features", np.ones((1, 4), np.float32))))
    assert ok.outputs
