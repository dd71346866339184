"""ModelMetrics.counted_request, the one place a request is counted: what code it records, and when not."""

from __future__ import annotations

import asyncio

import pytest
from kserve.errors import InvalidInput
from prometheus_client import REGISTRY

from predictor.protocol.errors import Overloaded
from predictor.server.metrics import ModelMetrics


def count(model: str, protocol: str, code: str) -> float:
    value = REGISTRY.get_sample_value("servekit_requests_total", {"model": model, "protocol": protocol, "code": code})
    return value or 0.0


def durations(model: str, protocol: str) -> float:
    value = REGISTRY.get_sample_value("servekit_request_duration_seconds_count", {"model": model, "protocol": protocol})
    return value or 0.0


def test_an_answered_request_counts_once_under_200() -> None:
    metrics = ModelMetrics("count-ok")
    with metrics.counted_request("v1"):
        pass
    assert count("count-ok", "v1", "200") == 1.0 and durations("count-ok", "v1") == 1.0


def test_a_path_that_answers_an_error_itself_sets_the_code() -> None:
    metrics = ModelMetrics("count-set")
    with metrics.counted_request("v2") as answer:
        answer.code = 415
    assert count("count-set", "v2", "415") == 1.0 and count("count-set", "v2", "200") == 0.0


@pytest.mark.parametrize(
    ("error", "code"), [(InvalidInput("bad"), "400"), (Overloaded("m", 4, 1.0), "503"), (RuntimeError("bug"), "500")]
)
def test_an_escaping_exception_counts_under_the_tables_status(error: Exception, code: str) -> None:
    model = f"count-raise-{code}"
    metrics = ModelMetrics(model)
    with pytest.raises(type(error)), metrics.counted_request("grpc"):
        raise error
    assert count(model, "grpc", code) == 1.0 and count(model, "grpc", "200") == 0.0


def test_a_cancelled_request_is_not_counted() -> None:
    metrics = ModelMetrics("count-cancelled")

    async def cancelled() -> None:
        with metrics.counted_request("v2"):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())
    assert durations("count-cancelled", "v2") == 0.0
