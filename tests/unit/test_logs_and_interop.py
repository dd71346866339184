"""Log formatting and levels; gRPC raw output contents; float values that do not fit their datatype."""

from __future__ import annotations

import json
import logging
import struct
import sys

import numpy as np
import pytest

from predictor.asgi import request_id
from predictor.protocol.grpc_raw import grpc_infer_response, raw_contents
from predictor.protocol.validation import InputError, json_decoder
from predictor.server import logs


def record(message: str, *args: object, name: str = "kserve", exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, args, exc_info)


def test_json_lines_have_the_fields_and_the_request_id() -> None:
    token = request_id.REQUEST_ID.set("req-9")
    try:
        line = logs.JsonFormatter().format(record("model %s failed\non two lines", "iris", exc=True))
    finally:
        request_id.REQUEST_ID.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "kserve"
    assert entry["message"] == "model iris failed\non two lines"
    assert entry["request_id"] == "req-9"
    assert entry["time"].endswith("Z") and "T" in entry["time"]
    assert "ValueError: boom" in entry["exception"]


def test_json_lines_outside_a_request_have_no_request_id() -> None:
    assert "request_id" not in json.loads(logs.JsonFormatter().format(record("starting")))


def test_text_lines_put_the_request_id_after_the_logger() -> None:
    token = request_id.REQUEST_ID.set("req-9")
    try:
        line = logs.TextFormatter().format(record("hello", name="uvicorn.access"))
    finally:
        request_id.REQUEST_ID.reset(token)
    assert " uvicorn.access [req-9] ERROR hello" in line


@pytest.mark.parametrize(
    ("level", "access_log", "trace", "access"),
    [
        ("info", False, "WARNING", "WARNING"),  # no per-request line at info
        ("info", True, "WARNING", "INFO"),  # the access log was asked for; KServe's timings still not
        ("debug", False, "DEBUG", "INFO"),
        ("warning", False, "WARNING", "WARNING"),
    ],
)
def test_per_request_loggers_only_at_debug(level: str, access_log: bool, trace: str, access: str) -> None:
    config = logs.logging_config("json", level, access_log)
    assert config["loggers"]["kserve.trace"]["level"] == trace
    assert config["loggers"]["uvicorn.access"]["level"] == access
    assert config["loggers"]["kserve"]["level"] == level.upper()
    assert config["root"]["handlers"] == ["servekit"]
    # KServe reconfigures logging when its logger has no handler; ours must have one.
    assert config["loggers"]["kserve"]["handlers"] == ["servekit"]


def test_failure_line_follows_the_images_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "_active_format", None)
    monkeypatch.delenv("PREDICTOR_LOG_FORMAT", raising=False)
    assert logs.failure_line("no model.yaml") == "predictor: error: no model.yaml"
    monkeypatch.setenv("PREDICTOR_LOG_FORMAT", "json")
    entry = json.loads(logs.failure_line("no model.yaml"))
    assert (entry["level"], entry["logger"], entry["message"]) == ("CRITICAL", "predictor", "no model.yaml")


def test_raw_contents_are_little_endian_row_major() -> None:
    array = np.array([[1, 2], [3, 4]], dtype=">i4")  # big-endian in memory
    assert raw_contents(array, "INT32") == struct.pack("<4i", 1, 2, 3, 4)
    assert raw_contents(np.array([[1.5], [2.5]], dtype=np.float32).T, "FP32") == struct.pack("<2f", 1.5, 2.5)


def test_raw_bytes_tensors_are_length_prefixed() -> None:
    array = np.array(["setosa", b"\x00\xff", "é"], dtype=object)
    assert raw_contents(array, "BYTES") == (
        struct.pack("<I", 6) + b"setosa" + struct.pack("<I", 2) + b"\x00\xff" + struct.pack("<I", 2) + "é".encode()
    )


def test_grpc_response_carries_raw_contents_only() -> None:
    labels = np.array([0, 2], dtype=np.int64)
    probabilities = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]], dtype=np.float32)
    response = grpc_infer_response(
        "iris", "1", "req-1", [("label", "INT64", labels), ("probabilities", "FP32", probabilities)]
    )
    assert (response.model_name, response.model_version, response.id) == ("iris", "1", "req-1")
    assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [
        ("label", "INT64", [2]),
        ("probabilities", "FP32", [2, 3]),
    ]
    assert not any(o.HasField("contents") for o in response.outputs)
    assert not any(o.parameters for o in response.outputs)
    assert np.frombuffer(response.raw_output_contents[0], "<i8").tolist() == [0, 2]
    np.testing.assert_array_equal(np.frombuffer(response.raw_output_contents[1], "<f4").reshape(2, 3), probabilities)


@pytest.mark.parametrize(
    ("data", "dtype", "message"),
    [
        ([1e300], "float32", "values beyond ±3.40282e+38 do not fit float32"),
        ([70000], "float16", "values beyond ±65504 do not fit float16"),
        ([1.0, -1e39], "float32", "do not fit float32"),
    ],
)
def test_floats_that_overflow_their_datatype_are_refused(data: list[float], dtype: str, message: str) -> None:
    decode = json_decoder(data, (len(data),), "x")
    with pytest.raises(InputError) as caught:
        decode(np.dtype(dtype))
    assert message in str(caught.value)


def test_floats_that_fit_are_cast() -> None:
    assert json_decoder([1, 2.5, 65504], (3,), "x")(np.dtype("float16")).tolist() == [1.0, 2.5, 65504.0]
