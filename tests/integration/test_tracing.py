"""OpenTelemetry tracing on a real server: spans reach an OTLP receiver, continuing the caller's trace."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from predictor.monitoring import tracing

pytest.importorskip("opentelemetry.sdk", reason="tracing needs the tracing extra (pip install -e '.[dev]' has it)")
from tests.support.otlp import OtlpReceiver, ReceivedSpan  # after the skip: it imports the SDK's protos
from tests.support.server import Server

BODY = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
CHILDREN = {"decode", "queue wait", "model call", "encode"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module", params=["lean", "kserve"])
def traced_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, iris_dir: Path, receiver: OtlpReceiver
) -> Iterator[Server]:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "iris-traced",
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # export within 50 ms instead of 5 s
    }
    args = [] if request.param == "lean" else ["--no-fast_path"]
    server = Server(iris_dir, "iris", args=args, env=env)
    server.start(tmp_path_factory.mktemp("logs") / f"iris-traced-{request.param}.log")
    try:
        yield server
    finally:
        server.stop()


def call_with_trace(server: Server, path: str, body: object) -> tuple[str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    response = httpx.post(
        f"{server.url}{path}", json=body, headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return trace_id, parent_id


def by_name(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {span.name: span for span in spans}


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v2/models/iris/infer", BODY), ("/v1/models/iris:predict", {"instances": [[6.7, 3, 5.2, 2.3]]})],
)
def test_a_request_continues_the_callers_trace_with_a_span_per_stage(
    traced_server: Server, receiver: OtlpReceiver, path: str, body: object
) -> None:
    trace_id, parent_id = call_with_trace(traced_server, path, body)
    spans = by_name(receiver.wait_for_trace(trace_id, 1 + len(CHILDREN)))
    server_span = spans.get(f"POST {path}")
    assert server_span is not None, sorted(spans)
    assert server_span.parent_id == parent_id
    assert server_span.service == "iris-traced"
    assert server_span.attributes["http.response.status_code"] == 200
    assert set(spans) >= CHILDREN, sorted(spans)
    for name in CHILDREN:
        child = spans[name]
        assert child.parent_id == server_span.span_id, name
        assert server_span.start_ns <= child.start_ns <= child.end_ns <= server_span.end_ns, name
    # in the order a request meets them
    assert spans["decode"].end_ns <= spans["queue wait"].start_ns
    assert spans["queue wait"].end_ns <= spans["model call"].start_ns
    assert spans["model call"].end_ns <= spans["encode"].start_ns


def test_health_probes_make_no_spans(traced_server: Server, receiver: OtlpReceiver) -> None:
    trace_id = secrets.token_hex(16)
    headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    assert httpx.get(f"{traced_server.url}/v2/models/iris/ready", headers=headers, timeout=10).status_code == 200
    call_with_trace(traced_server, "/v2/models/iris/infer", BODY)  # spans after the probe's would have come with it
    assert receiver.wait_for_trace(trace_id, 1, timeout_s=1.0) == []


def test_tracing_is_off_without_an_otlp_endpoint() -> None:
    assert not tracing.wanted({})
    assert not tracing.wanted({"OTEL_SERVICE_NAME": "x"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"})


def test_off_each_stage_costs_a_shared_null_context() -> None:
    assert not tracing.enabled()  # this test process never set it up
    assert tracing.span("decode") is tracing.span("encode")
    tracing.record("queue wait", 0, 1)  # nothing to record into, and no error


@pytest.mark.parametrize(
    ("protocol", "warning"),
    [
        ("http/json", "tracing off: OTEL_EXPORTER_OTLP_PROTOCOL='http/json', expected http/protobuf or grpc"),
        ("grpc", "tracing off: an OTLP endpoint is set but opentelemetry.exporter.otlp.proto.grpc is not installed"),
    ],
)
def test_tracing_that_cannot_run_is_a_warning_not_a_failed_start(
    caplog: pytest.LogCaptureFixture, protocol: str, warning: str
) -> None:
    if protocol == "grpc":
        try:
            import opentelemetry.exporter.otlp.proto.grpc  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            pass
        else:
            pytest.skip("the gRPC exporter is installed here")
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    with caplog.at_level(logging.WARNING, logger="predictor.monitoring.tracing"):
        assert tracing.setup(environ) is False
    assert not tracing.enabled()
    assert caplog.records[-1].getMessage().startswith(warning)
