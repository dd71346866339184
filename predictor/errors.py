"""Errors the server answers with a status other than 500, and how REST and gRPC spell them."""

from __future__ import annotations

import math

from fastapi import Request
from fastapi.responses import JSONResponse
from grpc_interceptor.exceptions import ResourceExhausted


class StartupError(RuntimeError):
    """The model cannot be served; the message is the one line printed before exiting."""


class Overloaded(ResourceExhausted):
    """The batch queue is full: REST answers 503 with Retry-After, gRPC RESOURCE_EXHAUSTED.

    It subclasses grpc-interceptor's ResourceExhausted because KServe's gRPC interceptor turns
    those into their status code; the REST side has its own handler below.
    """

    def __init__(self, model: str, queue_size: int, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(
            f"model {model!r} has {queue_size} requests queued, the most it accepts; retry in {retry_after_s:g} s"
        )

    def retry_after_header(self) -> str:
        """Retry-After takes whole seconds; never 0, which invites an immediate retry storm."""
        return str(max(1, math.ceil(self.retry_after_s)))


async def overloaded_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Overloaded)
    return JSONResponse(
        status_code=503,
        content={"error": exc.details},
        headers={"Retry-After": exc.retry_after_header()},
    )
