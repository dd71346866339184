"""Faults stay per request: an injected model exception or CUDA out-of-memory in a real server process.

The failing request gets a 5xx naming the cause; its batch-mates, retried alone, get their answers;
the server keeps serving. On both v2 REST routes and on gRPC.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from tests.integration.injected_faults import FAULT, HOLD, OUT_OF_MEMORY, InjectedFaults
from tests.support.models import make_estimator_model, run_server, started_dir
from tests.support.server import Server
from tests.support.started import started_calls, wait_started_async

HOLD_S = 1.5
MODEL_FAILED = "model 'faulty' failed on this request: RuntimeError: injected fault: a feature is 13"
OUT_OF_MEMORY_FRAGMENT = (
    "model 'faulty' ran out of memory on this request (OutOfMemoryError: CUDA out of memory. "
    "Tried to allocate 20.00 GiB (injected)); retry later or with fewer rows"
)


@pytest.fixture(scope="module")
def faulty_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "faulty"
    started_dir(path).mkdir(parents=True)
    return make_estimator_model(path, "faulty", InjectedFaults(HOLD_S, str(started_dir(path))))


@pytest.fixture(scope="module", params=["lean", "kserve"])
def faulty_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, faulty_model: Path
) -> Iterator[Server]:
    args = ["--log_format", "json"] + (["--no-fast_path"] if request.param == "kserve" else [])
    yield from run_server(tmp_path_factory, Server(faulty_model, "faulty", args=args))


def body(value: float) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [value, 1.0]}]}


def infer(server: Server, value: float) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/faulty/infer", json=body(value), timeout=30)


def test_a_model_exception_is_a_500_naming_it(faulty_server: Server) -> None:
    response = infer(faulty_server, FAULT)
    assert response.status_code == 500
    assert response.json() == {"error": MODEL_FAILED}
    assert infer(faulty_server, 1.0).status_code == 200


def test_out_of_memory_is_a_503_naming_it(faulty_server: Server) -> None:
    response = infer(faulty_server, OUT_OF_MEMORY)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"error": OUT_OF_MEMORY_FRAGMENT}
    assert infer(faulty_server, 1.0).status_code == 200


async def _batch_with_faults(server: Server) -> dict[float, list[int]]:
    """Hold the model, queue good and faulty requests behind it (they merge into one batch), collect statuses."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        before = started_calls(started_dir(server.model_dir))
        hold = asyncio.create_task(client.post("/v2/models/faulty/infer", json=body(HOLD)))
        await wait_started_async(started_dir(server.model_dir), since=before)  # the hold request is in the model now
        values = [1.0, 2.0, FAULT, 3.0, OUT_OF_MEMORY, 4.0]
        responses = await asyncio.gather(*(client.post("/v2/models/faulty/infer", json=body(v)) for v in values))
        assert (await hold).status_code == 200
    statuses: dict[float, list[int]] = {}
    for value, response in zip(values, responses, strict=True):
        statuses.setdefault(value, []).append(response.status_code)
    return statuses


def test_a_failing_batch_is_retried_request_by_request(faulty_server: Server) -> None:
    statuses = asyncio.run(_batch_with_faults(faulty_server))
    assert statuses == {1.0: [200], 2.0: [200], 3.0: [200], 4.0: [200], FAULT: [500], OUT_OF_MEMORY: [503]}
    # The merged batch failed once and was re-run alone, as the batcher logs.
    deadline = time.monotonic() + 5
    while not (merged := _isolation_lines(faulty_server)):
        assert time.monotonic() < deadline, "no log line about re-running a failed batch"
        time.sleep(0.1)
    assert any("RuntimeError: injected fault" in line["message"] for line in merged)
    # ... and the server serves on, health included.
    assert httpx.get(f"{faulty_server.url}/v2/models/faulty/ready").status_code == 200
    assert infer(faulty_server, 1.0).json()["outputs"][0]["data"] == [0]


def _isolation_lines(server: Server) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in server.log().splitlines()]
    return [e for e in entries if "re-running each alone" in e["message"] and "batch of 1 " not in e["message"]]


def test_faults_over_grpc_name_the_cause(faulty_server: Server) -> None:
    def request(value: float) -> pb.ModelInferRequest:
        contents = pb.InferTensorContents(fp32_contents=[value, 1.0])
        tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 2], contents=contents)
        return pb.ModelInferRequest(model_name="faulty", inputs=[tensor])

    with grpc.insecure_channel(faulty_server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for value, code, details in [
            (FAULT, grpc.StatusCode.INTERNAL, MODEL_FAILED),
            (OUT_OF_MEMORY, grpc.StatusCode.RESOURCE_EXHAUSTED, OUT_OF_MEMORY_FRAGMENT),
        ]:
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelInfer(request(value), timeout=30)
            assert (caught.value.code(), caught.value.details()) == (code, details)
        assert stub.ModelInfer(request(1.0), timeout=30).raw_output_contents == [b"\0" * 8]
