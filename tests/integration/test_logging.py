"""--log_format and --log_level on real servers: every line JSON, per-request lines only at debug or on error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from tests.support.auth import AUTH, GRPC_AUTH
from tests.support.models import run_server
from tests.support.payloads import V2, infer_request
from tests.support.server import REPO, Server, free_port

FIELDS = {"time", "level", "logger", "message", "pid"}
TEXT_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \d+ [\w.]+ (\[\S+\] )?(DEBUG|INFO|WARNING|ERROR|CRITICAL) "
)


def traffic(server: Server, headers: dict[str, str], grpc_metadata: tuple[tuple[str, str], ...]) -> None:
    """One successful request of every kind: both REST protocols, metadata, probes, metrics, gRPC."""
    url = server.url
    assert httpx.post(f"{url}/v2/models/iris/infer", json=V2, headers=headers).status_code == 200
    assert httpx.post(f"{url}/v2/models/iris/versions/1/infer", json=V2, headers=headers).status_code == 200
    v1 = {"instances": [[6.7, 3.0, 5.2, 2.3]]}
    assert httpx.post(f"{url}/v1/models/iris:predict", json=v1, headers=headers).status_code == 200
    for path in ["/v2/models/iris", "/v2/health/live", "/v2/models/iris/ready", "/metrics"]:
        assert httpx.get(url + path, headers=headers).status_code == 200
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        stub.ModelInfer(infer_request(), metadata=grpc_metadata, timeout=10)
        stub.ServerReady(pb.ServerReadyRequest(), timeout=10)


def settled_log(server: Server) -> list[str]:
    """The log once the server has stopped writing (lines land just after their answers)."""
    previous = None
    while (lines := server.log().splitlines()) != previous:
        previous = lines
        time.sleep(0.3)
    return lines


def test_every_line_is_one_json_object(guarded_server: Server) -> None:
    traffic(guarded_server, AUTH, GRPC_AUTH)
    httpx.post(f"{guarded_server.url}/v1/models/iris:predict", json={"instances": [[1]]}, headers=AUTH)  # an error
    lines = settled_log(guarded_server)
    entries = [json.loads(line) for line in lines]  # fails on the first line that is not JSON
    assert all(entry.keys() >= FIELDS for entry in entries), [e for e in entries if not e.keys() >= FIELDS]
    loggers = {entry["logger"] for entry in entries}
    assert {"kserve", "uvicorn.error", "predictor"} <= loggers, loggers  # KServe's, uvicorn's and ours


def test_no_per_request_lines_at_info(guarded_server: Server) -> None:
    traffic(guarded_server, AUTH, GRPC_AUTH)  # first calls may warn once (KServe's deprecations)
    before = settled_log(guarded_server)
    for _ in range(20):
        traffic(guarded_server, AUTH, GRPC_AUTH)
    after = settled_log(guarded_server)
    assert after == before, after[len(before) :]


@pytest.fixture(scope="module")
def debug_server(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[Server]:
    args = ["--log_format", "json", "--log_level", "debug", "--no-fast_path"]
    yield from run_server(tmp_path_factory, Server(iris_dir, "iris", args=args))


def test_per_request_lines_at_debug_carry_the_request_id(debug_server: Server) -> None:
    httpx.post(f"{debug_server.url}/v2/models/iris/infer", json=V2, headers={"x-request-id": "dbg-rest"})
    with grpc.insecure_channel(debug_server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        stub.ModelInfer(infer_request(), metadata=(("x-request-id", "dbg-grpc"),), timeout=10)
    entries = [json.loads(line) for line in settled_log(debug_server)]

    def about(request_id: str, where: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [e for e in entries if e.get("request_id") == request_id and where(e)]

    assert about("dbg-rest", lambda e: e["logger"] == "uvicorn.access" and "/v2/models/iris/infer" in e["message"])
    assert about("dbg-rest", lambda e: e["logger"] == "kserve.trace")  # KServe's timing lines
    assert about("dbg-grpc", lambda e: e["level"] == "DEBUG" and "ModelInfer" in e["message"])


def test_text_is_the_default(iris_server: Server) -> None:
    bad = {"instances": [[1]]}
    httpx.post(f"{iris_server.url}/v1/models/iris:predict", json=bad, headers={"x-request-id": "txt-1"})
    lines = settled_log(iris_server)
    assert not any(line.startswith("{") for line in lines)  # no JSON
    starts = [line for line in lines if line[:4].isdigit()]  # tracebacks continue a record on more lines
    assert starts and all(TEXT_LINE.match(line) for line in starts), starts
    assert any(" kserve [txt-1] ERROR " in line for line in starts)


def test_a_failed_start_is_one_json_line(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "predictor", "--model_dir", str(tmp_path / "missing")]
    command += ["--http_port", str(free_port()), "--grpc_port", str(free_port())]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREDICTOR_LOG_FORMAT": "json"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(e["level"], e["message"]) for e in entries if e["level"] == "CRITICAL"] == [
        ("CRITICAL", f"no model.yaml in model directory '{tmp_path / 'missing'}'")
    ]
