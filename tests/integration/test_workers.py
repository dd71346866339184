"""``--workers 2``: two real worker processes behind one REST and one gRPC port.

Which worker answered is read from /proc (the process holding the server end of the connection),
so nothing is added to the protocol for the tests' sake.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.integration import processes
from tests.support.models import make_slow_model, started_dir
from tests.support.server import REPO, Server
from tests.support.started import started_pids

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]  # setosa: label 0
V2_BODY = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": IRIS_ROW}]})
V1_BODY = json.dumps({"instances": [IRIS_ROW]})
REST_CALLS = (("v2", "/v2/models/iris/infer", V2_BODY), ("v1", "/v1/models/iris:predict", V1_BODY))
# Connections tried before concluding that one worker never gets any: the kernel hashes each new
# connection to a listening socket, so 40 all landing on one of two workers has odds of 2**-39.
MAX_TRIES = 40


def start_workers(tmp_path_factory: pytest.TempPathFactory, model_dir: Path, name: str, *args: str) -> Server:
    server = Server(model_dir, name, args=["--workers", "2", *args])
    return server.start(tmp_path_factory.mktemp("logs") / f"{name}-workers.log")


def worker_pids(server: Server, count: int = 2, timeout_s: float = 10.0) -> list[int]:
    assert server.process is not None
    deadline = time.monotonic() + timeout_s
    while len(pids := processes.children(server.process.pid)) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pids) == count, f"expected {count} workers under pid {server.process.pid}, found {pids}"
    return pids


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[Server]:
    args = ["--workers", "2", "--max_queue_size", "77"]
    server = Server(iris_dir, "iris", args=args, env={"PREDICTOR_MAX_BATCH_SIZE": "8"})
    server.start(tmp_path_factory.mktemp("logs") / "iris-workers.log")
    try:
        yield server
    finally:
        server.stop()


def rest_call(
    server: Server, method: str, path: str, body: str | None = None, pids: list[int] | None = None
) -> tuple[int, bytes, int | None]:
    """One request on a fresh connection: status, body, and which of ``pids`` answered it."""
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        client_port = conn.sock.getsockname()[1]
        owner = processes.server_side_owner(server.http_port, client_port, pids) if pids else None
        return response.status, data, owner
    finally:
        conn.close()


def grpc_infer(server: Server, pids: list[int]) -> tuple[pb.ModelInferResponse, set[int]]:
    """One ModelInfer on a channel of its own: the answer, and which of ``pids`` served it."""
    before = processes.own_client_ports(server.grpc_port)
    request = pb.ModelInferRequest(model_name="iris")
    tensor = request.inputs.add(name="features", datatype="FP32", shape=[1, 4])
    tensor.contents.fp32_contents.extend(IRIS_ROW)
    # A local subchannel pool: channels to one target would otherwise share a single connection.
    with grpc.insecure_channel(server.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
        ports = processes.own_client_ports(server.grpc_port) - before
        served_by = {owner for port in ports if (owner := processes.server_side_owner(server.grpc_port, port, pids))}
    return response, served_by


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics (from whichever worker the new connection reaches), by name and labels."""
    status, body, _ = rest_call(server, "GET", "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def requests_total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], protocol: str) -> float:
    labels = (("code", "200"), ("model", "iris"), ("protocol", protocol))
    return samples.get(("servekit_requests_total", labels), 0.0)


# ---- two processes answer REST and gRPC -----------------------------------------------------------


def test_two_workers_answer_rest(two_workers: Server) -> None:
    pids = worker_pids(two_workers)
    answered_by: set[int] = set()
    for _ in range(MAX_TRIES):
        status, body, owner = rest_call(two_workers, "POST", "/v2/models/iris/infer", V2_BODY, pids)
        assert status == 200, body
        assert json.loads(body)["outputs"][0]["data"] == [0]
        answered_by |= {owner} if owner else set()
        if answered_by == set(pids):
            break
    assert answered_by == set(pids), f"only {answered_by} of workers {pids} answered REST"


def test_two_workers_answer_grpc(two_workers: Server) -> None:
    pids = worker_pids(two_workers)
    answered_by: set[int] = set()
    for _ in range(MAX_TRIES):
        response, served_by = grpc_infer(two_workers, pids)
        # Answers come in raw_output_contents, as Triton's do (interop.py).
        assert np.frombuffer(response.raw_output_contents[0], "<i8").tolist() == [0]
        answered_by |= served_by
        if answered_by == set(pids):
            break
    assert answered_by == set(pids), f"only {answered_by} of workers {pids} answered gRPC"


def test_every_request_is_counted_once_across_workers(two_workers: Server) -> None:
    pids = worker_pids(two_workers)
    before = scrape(two_workers)
    served: dict[str, set[int]] = {"v1": set(), "v2": set(), "grpc": set()}
    for _ in range(10):
        for protocol, path, body in REST_CALLS:
            status, _, owner = rest_call(two_workers, "POST", path, body, pids)
            assert status == 200
            served[protocol] |= {owner} if owner else set()
        served["grpc"] |= grpc_infer(two_workers, pids)[1]
    assert set().union(*served.values()) == set(pids), f"the 30 requests did not reach both workers: {served}"

    # Several scrapes on fresh connections, so more than one worker answers them: all must agree.
    for _ in range(4):
        after = scrape(two_workers)
        for protocol in ("v1", "v2", "grpc"):
            assert requests_total(after, protocol) - requests_total(before, protocol) == 10, protocol
        # KServe's own histogram counts every request too, once (the lean v2 route observes it as well).
        predict_count = ("request_predict_seconds_count", (("model_name", "iris"),))
        assert after[predict_count] - before.get(predict_count, 0.0) == 30
        rows = ("servekit_batch_size_sum", (("model", "iris"),))
        assert after[rows] - before.get(rows, 0.0) == 30


def test_readiness_speaks_for_both_workers(two_workers: Server) -> None:
    for path in ("/v2/models/iris/ready", "/v2/health/ready", "/v1/models/iris"):
        status, body, _ = rest_call(two_workers, "GET", path)
        assert status == 200, (path, body)

    async def grpc_ready() -> tuple[bool, bool]:
        from kserve import InferenceGRPCClient

        client = InferenceGRPCClient(two_workers.grpc_target, retries=0, timeout=10)
        try:
            return await client.is_server_ready(), await client.is_model_ready("iris")
        finally:
            await client.close()

    assert asyncio.run(grpc_ready()) == (True, True)


# ---- a worker that dies is reported, then replaced ------------------------------------------------


def poll(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} not seen within {timeout_s} s"
        time.sleep(0.02)


def model_ready_status(server: Server) -> int:
    try:
        return httpx.get(f"{server.url}/v2/models/iris/ready", timeout=2).status_code
    except httpx.TransportError:
        return 0  # a connection that raced the dying worker's socket


def test_a_killed_worker_makes_the_pod_not_ready_until_replaced(
    tmp_path_factory: pytest.TempPathFactory, iris_dir: Path
) -> None:
    server = start_workers(tmp_path_factory, iris_dir, "iris")
    try:
        victim, survivor = worker_pids(server)
        os.kill(victim, signal.SIGKILL)
        poll(lambda: model_ready_status(server) == 503, 10, "readiness 503 after a worker was killed")
        # The replacement takes a fresh interpreter and a model load (seconds): still not ready now.
        assert httpx.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 503
        # The surviving worker still answers inference: only readiness speaks for the whole pod.
        answer = httpx.post(f"{server.url}/v2/models/iris/infer", content=V2_BODY, timeout=10)
        assert answer.status_code == 200, answer.text

        poll(lambda: model_ready_status(server) == 200, 60, "readiness 200 once the replacement is ready")
        new_pids = worker_pids(server)
        assert survivor in new_pids and victim not in new_pids
        assert scrape(server)[("servekit_worker_restarts_total", ())] == 1
        assert f"(pid {victim}) was killed by SIGKILL; the pod reports not ready" in server.log()
    finally:
        server.stop()


# ---- SIGTERM drains every worker, and nothing outlives the server ---------------------------------


async def until_a_call_begins_in_another_worker(started: Path, timeout_s: float) -> None:
    """Wait (at most ``timeout_s``) for a model call in a worker that had none: the last request went
    there. Without one by then, it queued behind a busy worker's call, and another request is due."""
    before = started_pids(started)
    deadline = time.monotonic() + timeout_s
    while started_pids(started) == before and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def test_sigterm_drains_every_worker_and_leaves_no_process(tmp_path_factory: pytest.TempPathFactory) -> None:
    model = make_slow_model(tmp_path_factory.mktemp("models") / "slow", seconds=1.0)
    started = started_dir(model)
    server = start_workers(tmp_path_factory, model, "slow")
    assert server.process is not None
    try:
        pids = worker_pids(server)
        tree = processes.descendants(server.process.pid)
        body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}]})

        async def requests_then_terminate() -> list[httpx.Response]:
            # One client per request, so each has its own connection (the kernel picks a worker per
            # connection): requests until a model call has begun in both workers, then SIGTERM.
            clients: list[httpx.AsyncClient] = []
            pending: list[asyncio.Task[httpx.Response]] = []
            try:
                while started_pids(started) != set(pids):
                    assert len(clients) < MAX_TRIES, f"model calls began only in {started_pids(started)} of {pids}"
                    clients.append(httpx.AsyncClient(base_url=server.url, timeout=20))
                    pending.append(asyncio.create_task(clients[-1].post("/v2/models/slow/infer", content=body)))
                    await until_a_call_begins_in_another_worker(started, timeout_s=0.5)
                assert server.process is not None
                server.process.terminate()  # what the kubelet sends
                return await asyncio.gather(*pending)
            finally:
                await asyncio.gather(*(c.aclose() for c in clients))

        answers = asyncio.run(requests_then_terminate())
        assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers]
        assert server.process.wait(timeout=30) == 0, server.log()
        assert processes.wait_until_gone(tree, 5) == [], f"left running after SIGTERM: {tree} (workers {pids})"
    finally:
        server.stop()


def test_workers_stop_when_the_supervisor_is_killed(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> None:
    server = start_workers(tmp_path_factory, iris_dir, "iris")
    assert server.process is not None
    pids = worker_pids(server)
    try:
        server.process.kill()  # SIGKILL: the supervisor cannot forward anything
        server.process.wait(timeout=10)
        assert processes.wait_until_gone(pids, 30) == [], "workers outlived their supervisor"
    finally:
        for pid in pids:
            if processes.alive(pid):
                os.kill(pid, signal.SIGKILL)


# ---- start-up failures ----------------------------------------------------------------------------


def run_to_exit(model_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = Server(model_dir, "iris", args=["--workers", "2", *args]).command()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_a_model_that_cannot_load_stops_the_server_with_its_exit_code(iris_dir: Path, tmp_path: Path) -> None:
    import shutil

    model_dir = Path(shutil.copytree(iris_dir, tmp_path / "iris"))
    (model_dir / "model.joblib").write_bytes(b"tampered")
    result = run_to_exit(model_dir)
    assert result.returncode == 2, result.stderr
    assert "predictor: error: artifact" in result.stderr and "refusing to load it" in result.stderr
    assert "before it was ready; stopping the server" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_manifest_fails_once_before_any_worker_starts(tmp_path: Path) -> None:
    result = run_to_exit(tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"predictor: error: no model.yaml in model directory '{tmp_path}'"]


def test_workers_get_every_setting(two_workers: Server) -> None:
    """Our flags and PREDICTOR_* variables reach every worker (each logs its batching settings);
    KServe's flags too, or the workers would not listen on the ports the test chose."""
    log = two_workers.log()
    assert log.count("max_batch_size=8, max_latency_ms=0.0, max_queue_size=77)") == 2, log
