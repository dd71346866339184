"""Every place servekit reaches into KServe's module globals or private names, written against kserve 0.21.

KServe's Python ModelServer offers no hooks for what the predictor needs: its own ASGI layers in front
of the REST app, gRPC interceptors and a receive limit, and (with ``--workers N``) a REST server that
listens on a shared port. It builds all three from names in ``kserve.model_server`` when it starts, so
those names are replaced here before ``ModelServer.start``. The gRPC and REST server subclasses use
private attributes of KServe's classes (``_server``, ``_data_plane``, ``_model_repository_extension``,
``_port``, ``_kwargs``). A KServe upgrade checks this module first, and ``tests/unit/test_kserve_compat.py``
fails if a name it relies on is gone.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

from grpc import aio
from kserve import model_server
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.rest.server import RESTServer

KSERVE_VERSION = "0.21"
# The module globals ModelServer.start reads; checked by the test above.
GLOBALS = ("app", "parser", "FASTAPI_APP_IMPORT_STRING", "GRPCServer", "RESTServer")


def kserve_parser() -> argparse.ArgumentParser:
    """KServe's own flags (ports, gRPC, logging), to extend as a parent parser."""
    parser: argparse.ArgumentParser = model_server.parser
    return parser


def kserve_app() -> Any:
    """The FastAPI app ModelServer serves: its routes, middleware and exception handlers."""
    return model_server.app


def serve_asgi_app_from(import_string: str) -> None:
    """Make uvicorn, started by the next ModelServer, load this app ("module:attribute") instead of KServe's."""
    model_server.FASTAPI_APP_IMPORT_STRING = import_string


class InterceptedGRPCServer(GRPCServer):  # type: ignore[misc]
    """KServe's gRPC server, built as ``GRPCServer.start`` builds it, but with our interceptors and
    receive limit (KServe's has two fixed interceptors, one logging every call at info)."""

    def __init__(
        self, *args: Any, interceptors: Sequence[aio.ServerInterceptor], max_receive_bytes: int, **kwargs: Any
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


def use_grpc_server(interceptors: Sequence[aio.ServerInterceptor], max_receive_bytes: int) -> None:
    """Make the next ModelServer start :class:`InterceptedGRPCServer` instead of KServe's."""
    model_server.GRPCServer = functools.partial(
        InterceptedGRPCServer, interceptors=interceptors, max_receive_bytes=max_receive_bytes
    )


def use_rest_server_on(listen: Callable[[str, int, int], Any], on_listening: Callable[[], None]) -> None:
    """Make the next ModelServer's REST server serve on the socket ``listen(host, port, backlog)``
    returns (one of several workers sharing a port), calling ``on_listening`` once it is bound."""

    class SocketRESTServer(RESTServer):  # type: ignore[misc]
        async def start(self) -> None:
            self.create_application()
            sock = listen(self.config.host, self.config.port, self.config.backlog)
            on_listening()
            await self._server.serve(sockets=[sock])

    model_server.RESTServer = SocketRESTServer


def rename_kserve_flag_help(parser: argparse.ArgumentParser, dest: str, text: str) -> None:
    """Reword the help of one of KServe's flags that ours gives another meaning (argparse keeps
    actions in a private list)."""
    for action in parser._actions:
        if action.dest == dest:
            action.help = text


def use_kserve_log_config(log_config_file: str, logger_name: str) -> None:
    """KServe's ``--log_config_file``: configure logging as KServe does, and give our logger its handlers."""
    import logging

    from kserve import logging as kserve_logging

    kserve_logging.configure_logging(log_config_file)
    ours = logging.getLogger(logger_name)
    ours.handlers = list(kserve_logging.logger.handlers)
    ours.setLevel(kserve_logging.logger.level)
    ours.propagate = False


def predict_seconds(model_name: str) -> Any:
    """KServe's own predict-latency histogram for this model, which the lean route fills as KServe's route does."""
    from kserve.metrics import PREDICT_HIST_TIME

    return PREDICT_HIST_TIME.labels(model_name=model_name)


def add_route_before_kserve(path: str, endpoint: Callable[..., Any], methods: list[str]) -> None:
    """A route on KServe's app that answers before KServe's own route for the same path (the first
    matching route answers, and ModelServer.start adds KServe's later)."""
    model_server.app.add_api_route(path, endpoint, methods=methods)
