"""x-request-id on a real server: taken or made, echoed (REST header, gRPC trailer), in the body and the logs."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from tests.support.auth import AUTH, GRPC_AUTH
from tests.support.payloads import V2, infer_request
from tests.support.server import Server

MADE_ID = re.compile(r"[0-9a-f]{32}")  # W3C trace-id format


def post(server: Server, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers={**AUTH, **headers})


def log_entries(server: Server, request_id: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """The JSON log lines about one request (the server may write them just after answering)."""
    deadline = time.monotonic() + timeout_s
    while True:
        entries = [json.loads(line) for line in server.log().splitlines()]
        found = [entry for entry in entries if entry.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_given_id_is_echoed_and_answers_as_the_v2_id(guarded_server: Server) -> None:
    response = post(guarded_server, "/v2/models/iris/infer", V2, **{"x-request-id": "client-id-1"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "client-id-1"
    assert response.json()["id"] == "client-id-1"  # no id in the body: the request id stands in


def test_the_bodys_own_id_wins_in_the_body(guarded_server: Server) -> None:
    response = post(guarded_server, "/v2/models/iris/infer", {**V2, "id": "body-id"}, **{"x-request-id": "hdr-id"})
    assert (response.headers["x-request-id"], response.json()["id"]) == ("hdr-id", "body-id")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v2/models/iris/infer", 200),
        ("POST", "/v1/models/iris:predict", 200),
        ("GET", "/v2/models/iris", 200),
        ("GET", "/v2/health/live", 200),
        ("POST", "/v2/models/roses/infer", 404),
        ("POST", "/v2/models/iris/infer?no-token", 401),
    ],
)
def test_every_answer_carries_a_made_id(guarded_server: Server, method: str, path: str, status: int) -> None:
    headers = {} if path.endswith("no-token") else AUTH
    body = {"instances": [[6.7, 3.0, 5.2, 2.3]]} if path.startswith("/v1") else V2
    first = httpx.request(method, guarded_server.url + path, json=body if method == "POST" else None, headers=headers)
    second = httpx.request(method, guarded_server.url + path, json=body if method == "POST" else None, headers=headers)
    assert first.status_code == status, first.text
    assert MADE_ID.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_an_implausible_id_is_replaced(guarded_server: Server) -> None:
    response = post(guarded_server, "/v2/models/iris/infer", V2, **{"x-request-id": "x" * 300})
    assert MADE_ID.fullmatch(response.headers["x-request-id"])


def test_error_log_lines_carry_the_request_id(guarded_server: Server) -> None:
    bad = {"instances": [[1, 2, 3]]}  # KServe's handler logs a 400 at error
    response = post(guarded_server, "/v1/models/iris:predict", bad, **{"x-request-id": "trace-me-1"})
    assert response.status_code == 400
    entries = log_entries(guarded_server, "trace-me-1")
    assert entries, "no log line carries the request id"
    assert {entry["level"] for entry in entries} == {"ERROR"}
    assert any("dimension 1 is 3" in entry.get("exception", "") + entry["message"] for entry in entries)


def test_grpc_id_in_trailing_metadata_and_response(guarded_server: Server) -> None:
    with grpc.insecure_channel(guarded_server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        given = (*GRPC_AUTH, ("x-request-id", "grpc-id-7"))
        response, call = stub.ModelInfer.with_call(infer_request(), metadata=given, timeout=10)
        assert dict(call.trailing_metadata())["x-request-id"] == "grpc-id-7"
        assert response.id == "grpc-id-7"

        response, call = stub.ModelInfer.with_call(infer_request(), metadata=GRPC_AUTH, timeout=10)
        made = dict(call.trailing_metadata())["x-request-id"]
        assert MADE_ID.fullmatch(made) and response.id == made

        with pytest.raises(grpc.RpcError) as caught:  # errors carry it too
            stub.ModelInfer(pb.ModelInferRequest(model_name="iris"), metadata=given, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert dict(caught.value.trailing_metadata())["x-request-id"] == "grpc-id-7"
    assert any(entry["level"] == "ERROR" for entry in log_entries(guarded_server, "grpc-id-7"))
