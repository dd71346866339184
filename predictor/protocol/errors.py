"""Errors the server answers with a status other than 500, and one table of how every route answers them."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from grpc_interceptor.exceptions import GrpcException, Internal, ResourceExhausted
from kserve.errors import InvalidInput, ModelNotReady


class StartupError(RuntimeError):
    """The model cannot be served; the message is the one line printed before exiting."""


class Overloaded(ResourceExhausted):
    """The batch queue is full: REST answers 503 with Retry-After, gRPC RESOURCE_EXHAUSTED.

    It subclasses grpc-interceptor's ResourceExhausted because KServe's gRPC interceptor turns
    those into their status code; REST answers come from ``rest_answer`` below.
    """

    def __init__(self, model: str, queue_size: int, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(
            f"model {model!r} has {queue_size} requests queued, the most it accepts; retry in {retry_after_s:g} s"
        )

    def retry_after_header(self) -> str:
        """Retry-After takes whole seconds; never 0, which invites an immediate retry storm."""
        return str(max(1, math.ceil(self.retry_after_s)))


class ModelFailed(Internal):
    """The model raised on this request's batch, and again when the request ran alone.

    REST answers 500 and gRPC INTERNAL, both naming the model's exception (KServe's gRPC side
    would say only "Internal server error"); the server keeps serving.
    """

    def __init__(self, model: str, cause: BaseException) -> None:
        super().__init__(f"model {model!r} failed on this request: {type(cause).__name__}: {cause}")


class DeviceOutOfMemory(ResourceExhausted):
    """The model ran out of memory (CUDA or host) on this request: 503 / RESOURCE_EXHAUSTED.

    Transient by nature: the batch it failed in is retried request by request, and other requests
    (or this one, later) may fit.
    """

    def __init__(self, model: str, cause: BaseException) -> None:
        first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        super().__init__(
            f"model {model!r} ran out of memory on this request ({type(cause).__name__}: {first_line}); "
            "retry later or with fewer rows"
        )


def is_out_of_memory(exc: BaseException) -> bool:
    """Host MemoryError, or torch's OutOfMemoryError (CUDA) when torch is loaded."""
    torch = sys.modules.get("torch")
    torch_oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    return isinstance(exc, MemoryError) or (torch_oom is not None and isinstance(exc, torch_oom))


def model_fault(model: str, exc: Exception) -> GrpcException:
    """What a model's own exception is answered with."""
    return DeviceOutOfMemory(model, exc) if is_out_of_memory(exc) else ModelFailed(model, exc)


# ---- one table: exception -> HTTP status, gRPC code, headers ---------------------------------------


@dataclass(frozen=True)
class ErrorAnswer:
    """How one kind of exception is answered on every route: KServe's REST app (``add_handlers``),
    the lean v2 route (asgi/fastpath.py), the request counter (``http_status``) and gRPC
    (``TableStatusInterceptor``)."""

    http_status: int
    grpc_code: grpc.StatusCode
    headers: Callable[[Exception], dict[str, str]] = lambda _exc: {}
    # KServe answers its own exceptions itself: on REST with its exception handlers, on gRPC with its
    # interceptor. Its 0.21 interceptor fails on ModelNotReady (it reads a .reason the class lacks):
    # that one the table answers on gRPC.
    rest_by_kserve: bool = False
    grpc_by_kserve: bool = False


# First match wins: the more specific classes first. KServe's own entries say what KServe answers
# (tests/unit/test_errors.py drives KServe's interceptor to check that they still do).
ERROR_ANSWERS: tuple[tuple[type[Exception], ErrorAnswer], ...] = (
    (
        Overloaded,
        ErrorAnswer(
            503,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            lambda exc: {"retry-after": exc.retry_after_header()} if isinstance(exc, Overloaded) else {},
        ),
    ),
    (DeviceOutOfMemory, ErrorAnswer(503, grpc.StatusCode.RESOURCE_EXHAUSTED, lambda _exc: {"retry-after": "1"})),
    (ModelFailed, ErrorAnswer(500, grpc.StatusCode.INTERNAL)),
    (InvalidInput, ErrorAnswer(400, grpc.StatusCode.INVALID_ARGUMENT, rest_by_kserve=True, grpc_by_kserve=True)),
    (ModelNotReady, ErrorAnswer(503, grpc.StatusCode.UNAVAILABLE, rest_by_kserve=True)),
)
UNEXPECTED = ErrorAnswer(500, grpc.StatusCode.INTERNAL, rest_by_kserve=True, grpc_by_kserve=True)


def answer_for(exc: BaseException) -> ErrorAnswer:
    return next((answer for kind, answer in ERROR_ANSWERS if isinstance(exc, kind)), UNEXPECTED)


def http_status(exc: BaseException) -> int:
    """The REST status an exception is answered with; counted under this code in the metrics."""
    return answer_for(exc).http_status


def message_of(exc: BaseException) -> str:
    """The text of the answer: ours carry it in ``details`` (grpc-interceptor's field), KServe's in ``str``."""
    return str(getattr(exc, "details", None) or exc)


def rest_answer(exc: Exception) -> tuple[int, str, dict[str, str]] | None:
    """Status, message and extra headers for an exception in the table; None for any other."""
    answer = answer_for(exc)
    if answer is UNEXPECTED:
        return None
    return answer.http_status, message_of(exc), answer.headers(exc)


async def rest_error_handler(_: Request, exc: Exception) -> JSONResponse:
    status, message, headers = rest_answer(exc) or (500, message_of(exc), {})
    return JSONResponse(status_code=status, content={"error": message}, headers=headers)


def add_handlers(app: FastAPI) -> None:
    """KServe's REST app answers our errors as the lean route does (it would say 500 for all of them)."""
    for kind, answer in ERROR_ANSWERS:
        if not answer.rest_by_kserve:
            app.add_exception_handler(kind, rest_error_handler)
