"""Inference off the event loop, a bounded queue, and dynamic batching that changes no answer."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import joblib
import numpy as np
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest
from sklearn.datasets import load_iris

from tests.support.models import make_slow_model, run_server, started_dir
from tests.support.server import Server
from tests.support.started import started_calls, wait_started_async

SLOW_BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 1.0]}]}


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    model = make_slow_model(tmp_path_factory.mktemp("models") / "slow", seconds=1.5)
    # Batching off and a queue of one: the second waiting request is refused.
    server = Server(model, "slow", args=["--no-batching", "--max_queue_size", "1"])
    yield from run_server(tmp_path_factory, server)


async def _liveness_during_slow_predict(server: Server) -> tuple[float, int]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        before = started_calls(started_dir(server.model_dir))
        slow = asyncio.create_task(client.post("/v2/models/slow/infer", json=SLOW_BODY))
        await wait_started_async(started_dir(server.model_dir), since=before)  # the predict is in the model now
        assert not slow.done()
        start = time.perf_counter()
        live = await client.get("/v2/health/live")
        elapsed = time.perf_counter() - start
        assert live.json() == {"live": True}
        assert not slow.done(), "the slow predict should still be running while liveness answered"
        return elapsed, (await slow).status_code


def test_liveness_answers_while_a_slow_predict_runs(slow_server: Server) -> None:
    elapsed, slow_status = asyncio.run(_liveness_during_slow_predict(slow_server))
    assert slow_status == 200
    # The predict takes 1.5 s; a blocked loop would hold liveness for the rest of it (>1 s).
    assert elapsed < 0.5, f"liveness took {elapsed:.3f} s while the model was busy"


async def _flood(server: Server, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        return await asyncio.gather(*(client.post("/v2/models/slow/infer", json=SLOW_BODY) for _ in range(count)))


def test_full_queue_answers_503_with_retry_after(slow_server: Server) -> None:
    responses = asyncio.run(_flood(slow_server, 4))
    codes = sorted(r.status_code for r in responses)
    # One runs, one waits in the queue of size 1, the rest are refused at once.
    assert codes.count(200) >= 1
    refused = [r for r in responses if r.status_code == 503]
    assert refused, codes
    assert int(refused[0].headers["retry-after"]) >= 1
    assert "queued" in refused[0].json()["error"]
    metrics = httpx.get(f"{slow_server.url}/metrics").text
    assert re.search(r'servekit_queue_rejections_total\{model="slow"\} [1-9]', metrics)


async def _grpc_flood(server: Server, count: int) -> list[BaseException | object]:
    client = InferenceGRPCClient(server.grpc_target, retries=0, timeout=20)
    try:
        tensor = InferInput("x", [1, 2], "FP32")
        tensor.set_data_from_numpy(np.ones((1, 2), dtype=np.float32))
        request = InferRequest(model_name="slow", infer_inputs=[tensor])
        return await asyncio.gather(*(client.infer(request) for _ in range(count)), return_exceptions=True)
    finally:
        await client.close()


def test_full_queue_over_grpc_is_resource_exhausted(slow_server: Server) -> None:
    results = asyncio.run(_grpc_flood(slow_server, 4))
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert refused, results
    assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert "queued" in (refused[0].details() or "")
    assert len(refused) < len(results)  # the one that ran was answered


IRIS = load_iris().data.astype(np.float32)


async def _concurrent_requests(server: Server, sizes: list[int]) -> list[list[int]]:
    async def one(client: httpx.AsyncClient, index: int, size: int) -> list[int]:
        rows = IRIS[(np.arange(size) + index * 7) % len(IRIS)]
        body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [size, 4], "data": rows.ravel().tolist()}]}
        response = await client.post("/v2/models/iris/infer", json=body)
        assert response.status_code == 200, response.text
        return list(response.json()["outputs"][0]["data"])

    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=server.url, timeout=20, limits=limits) as client:
        return await asyncio.gather(*(one(client, i, s) for i, s in enumerate(sizes)))


def metric(metrics: str, name: str) -> float:
    found = re.search(name + r'\{model="iris"\} ([0-9.e+]+)', metrics)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def batch_stats(metrics: str) -> tuple[float, float]:
    """Model calls so far, and requests merged into them."""
    return metric(metrics, "servekit_batch_requests_count"), metric(metrics, "servekit_batch_requests_sum")


def test_concurrent_answers_match_unbatched(iris_server: Server, iris_dir: Path) -> None:
    estimator = joblib.load(iris_dir / "model.joblib")
    sizes = [1 + (i * 5) % 9 for i in range(200)]
    calls_before, requests_before = batch_stats(httpx.get(f"{iris_server.url}/metrics").text)
    answers = asyncio.run(_concurrent_requests(iris_server, sizes))
    for index, (size, answer) in enumerate(zip(sizes, answers, strict=True)):
        rows = IRIS[(np.arange(size) + index * 7) % len(IRIS)]
        assert answer == estimator.predict(rows).tolist(), f"request {index} got someone else's rows"
    calls, requests = batch_stats(httpx.get(f"{iris_server.url}/metrics").text)
    assert requests - requests_before == len(sizes)
    # Batching happened: fewer model calls than requests.
    assert calls - calls_before < len(sizes)


def test_sigterm_lets_a_running_request_finish(tmp_path_factory: pytest.TempPathFactory) -> None:
    model = make_slow_model(tmp_path_factory.mktemp("models") / "slow", seconds=1.0)
    server = Server(model, "slow")
    server.start(tmp_path_factory.mktemp("logs") / "sigterm.log")
    try:

        async def request_then_terminate() -> httpx.Response:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                pending = asyncio.create_task(client.post("/v2/models/slow/infer", json=SLOW_BODY))
                await wait_started_async(started_dir(model))  # the request is in the model now
                assert server.process is not None
                server.process.terminate()  # what the kubelet sends first
                return await pending

        response = asyncio.run(request_then_terminate())
        assert response.status_code == 200, response.text
        assert server.process is not None
        assert server.process.wait(timeout=15) == 0, server.log()
    finally:
        server.stop()
