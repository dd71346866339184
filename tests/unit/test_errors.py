"""One table answers every exception on every route: KServe's REST app, the lean route, gRPC."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor

from predictor.protocol.errors import (
    ERROR_ANSWERS,
    DeviceOutOfMemory,
    ModelFailed,
    Overloaded,
    http_status,
    message_of,
    rest_answer,
)
from predictor.server.grpc_server import TableStatusInterceptor

EXAMPLES: dict[type[Exception], Exception] = {
    Overloaded: Overloaded("iris", 7, 2.5),
    DeviceOutOfMemory: DeviceOutOfMemory("iris", MemoryError("no room")),
    ModelFailed: ModelFailed("iris", ValueError("bad row")),
    InvalidInput: InvalidInput("input 'features': expected FP32"),
    ModelNotReady: ModelNotReady("iris", "the server is shutting down"),
}


class Aborted(Exception):
    pass


class FakeContext:
    """The one thing an exception interceptor does with its context: abort with a code."""

    code: grpc.StatusCode | None = None
    details = ""

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted()


def grpc_answer(interceptor: Any, exc: Exception) -> tuple[grpc.StatusCode | None, str]:
    context = FakeContext()
    with pytest.raises(Aborted):
        asyncio.run(interceptor.handle_exception(exc, None, context, "/inference.GRPCInferenceService/ModelInfer"))
    return context.code, context.details


def test_every_entry_has_an_example() -> None:
    assert sorted(kind.__name__ for kind, _ in ERROR_ANSWERS) == sorted(kind.__name__ for kind in EXAMPLES)


@pytest.mark.parametrize(("kind", "answer"), ERROR_ANSWERS, ids=[kind.__name__ for kind, _ in ERROR_ANSWERS])
def test_grpc_answers_come_from_the_table(kind: type[Exception], answer: Any) -> None:
    code, details = grpc_answer(TableStatusInterceptor(), EXAMPLES[kind])
    assert code == answer.grpc_code
    if not answer.grpc_by_kserve:
        assert details == message_of(EXAMPLES[kind])


@pytest.mark.parametrize(("kind", "answer"), [e for e in ERROR_ANSWERS if e[1].grpc_by_kserve])
def test_kserves_own_entries_say_what_kserve_answers(kind: type[Exception], answer: Any) -> None:
    # KServe's interceptor answers its own exceptions; the table's entries for them must agree.
    assert grpc_answer(ExceptionToStatusInterceptor(), EXAMPLES[kind])[0] == answer.grpc_code


def test_rest_answers() -> None:
    assert rest_answer(EXAMPLES[Overloaded]) == (
        503,
        "model 'iris' has 7 requests queued, the most it accepts; retry in 2.5 s",
        {"retry-after": "3"},
    )
    assert rest_answer(EXAMPLES[DeviceOutOfMemory])[2] == {"retry-after": "1"}  # type: ignore[index]
    assert rest_answer(EXAMPLES[InvalidInput]) == (400, "input 'features': expected FP32", {})
    assert rest_answer(RuntimeError("a bug")) is None
    assert [http_status(EXAMPLES[kind]) for kind, _ in ERROR_ANSWERS] == [503, 503, 500, 400, 503]
    assert http_status(RuntimeError("a bug")) == 500
