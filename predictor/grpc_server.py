"""KServe's gRPC server with our interceptors and a receive limit that follows --max_body_bytes.

KServe 0.21 builds its ``grpc.aio`` server inside ``GRPCServer.start`` with two fixed interceptors
(one logs every call at info) and takes its limits from its own flags; ``ModelServer.start``
constructs that class by name from ``kserve.model_server``. ``install`` puts this subclass there,
which builds the same server with, outermost first:

    RequestIdInterceptor           x-request-id in, trailing metadata out; the per-call line at debug
    BearerAuthInterceptor          with --auth_token_file: UNAUTHENTICATED unless a health method
    ExceptionToStatusInterceptor   KServe's own: errors to status codes (ours subclass its exceptions)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent import futures
from typing import Any

from grpc import aio
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer

from predictor.auth import BearerAuthInterceptor, TokenFile
from predictor.request_id import RequestIdInterceptor
from predictor.settings import PredictorSettings


def interceptors(tokens: TokenFile | None) -> list[aio.ServerInterceptor]:
    chain: list[aio.ServerInterceptor] = [RequestIdInterceptor()]
    if tokens is not None:
        chain.append(BearerAuthInterceptor(tokens))
    chain.append(ExceptionToStatusInterceptor())
    return chain


class ServingGRPCServer(GRPCServer):  # type: ignore[misc]
    """Constructed by ``ModelServer.start`` as KServe's own; ``install`` binds the keyword arguments."""

    def __init__(
        self,
        *args: Any,
        interceptors: Sequence[aio.ServerInterceptor],
        max_receive_bytes: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._interceptors = tuple(interceptors)
        self._max_receive_bytes = max_receive_bytes

    async def start(self, max_workers: int) -> None:
        from kserve.logging import logger

        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=self._interceptors,
            options=[
                ("grpc.max_send_message_length", self._kwargs.get("grpc_max_send_message_length")),
                ("grpc.max_receive_message_length", self._max_receive_bytes),
            ],
        )
        servicer = InferenceServicer(self._data_plane, self._model_repository_extension)
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        listen_addr = f"[::]:{self._port}"
        self._server.add_insecure_port(listen_addr)
        logger.info("Starting gRPC server on %s with %d workers", listen_addr, max_workers)
        await self._server.start()
        await self._server.wait_for_termination()


def install(settings: PredictorSettings, tokens: TokenFile | None) -> None:
    """Make the next ModelServer start this server instead of KServe's."""
    from kserve import model_server

    model_server.GRPCServer = functools.partial(
        ServingGRPCServer, interceptors=interceptors(tokens), max_receive_bytes=settings.max_body_bytes
    )
