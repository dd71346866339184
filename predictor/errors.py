"""Errors the server answers with a status other than 500, and how REST and gRPC spell them."""

from __future__ import annotations

import math
import sys

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from grpc_interceptor.exceptions import GrpcException, Internal, ResourceExhausted


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


def rest_answer(exc: Exception) -> tuple[int, str, dict[str, str]] | None:
    """Status, message and extra headers for the errors above; None for any other exception."""
    if isinstance(exc, Overloaded):
        return 503, exc.details, {"retry-after": exc.retry_after_header()}
    if isinstance(exc, DeviceOutOfMemory):
        return 503, exc.details, {"retry-after": "1"}
    if isinstance(exc, ModelFailed):
        return 500, exc.details, {}
    return None


async def rest_error_handler(_: Request, exc: Exception) -> JSONResponse:
    answer = rest_answer(exc)
    assert answer is not None, f"no REST answer for {type(exc).__name__}"
    status, message, headers = answer
    return JSONResponse(status_code=status, content={"error": message}, headers=headers)


def add_handlers(app: FastAPI) -> None:
    """KServe's REST app answers these as the lean route does (it would say 500 for all of them)."""
    for error in (Overloaded, ModelFailed, DeviceOutOfMemory):
        app.add_exception_handler(error, rest_error_handler)
