"""KServe's gRPC server with our interceptors and a receive limit that follows --max_body_bytes.

KServe 0.21 builds its ``grpc.aio`` server inside ``GRPCServer.start`` with two fixed interceptors
(one logs every call at info) and takes its limits from its own flags; ``ModelServer.start``
constructs that class by name from ``kserve.model_server``. ``install`` puts a subclass there
(kserve_compat.InterceptedGRPCServer), which builds the same server with, outermost first:

    RequestIdInterceptor           x-request-id in, trailing metadata out; the per-call line at debug
    BearerAuthInterceptor          with --auth_token_file: UNAUTHENTICATED unless a health method
    TableStatusInterceptor         KServe's own, answering our errors from protocol/errors.py's table
"""

from __future__ import annotations

from typing import Any

from grpc import aio
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor

from predictor.asgi.auth import BearerAuthInterceptor, TokenFile
from predictor.asgi.request_id import RequestIdInterceptor
from predictor.protocol.errors import answer_for, message_of
from predictor.server import kserve_compat
from predictor.server.settings import PredictorSettings


class TableStatusInterceptor(ExceptionToStatusInterceptor):  # type: ignore[misc]
    """KServe's gRPC exception interceptor, answering from protocol/errors.py's table (what KServe
    answers well keeps its answer and its log line)."""

    async def handle_exception(self, ex: Exception, request_or_iterator: Any, context: Any, method_name: str) -> None:
        answer = answer_for(ex)
        if not answer.grpc_by_kserve:
            await context.abort(answer.grpc_code, message_of(ex))
        await super().handle_exception(ex, request_or_iterator, context, method_name)


def interceptors(tokens: TokenFile | None) -> list[aio.ServerInterceptor]:
    chain: list[aio.ServerInterceptor] = [RequestIdInterceptor()]
    if tokens is not None:
        chain.append(BearerAuthInterceptor(tokens))
    chain.append(TableStatusInterceptor())
    return chain


def install(settings: PredictorSettings, tokens: TokenFile | None) -> None:
    """Make the next ModelServer start this server instead of KServe's."""
    kserve_compat.use_grpc_server(interceptors(tokens), max_receive_bytes=settings.max_body_bytes)
