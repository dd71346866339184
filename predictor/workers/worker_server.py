"""KServe's ModelServer as one worker of several (``--workers N``; workers.py starts them).

Three differences from a single server, each because N processes serve one pod:

* REST listens on a socket bound with SO_REUSEPORT, so every worker binds the same port and the
  kernel spreads connections over those listening (KServe's gRPC server sets it already). The
  worker marks itself ready on the shared board once that socket listens.
* The readiness endpoints (REST v1 and v2, gRPC ServerReady and ModelReady) say ready only when
  every worker is: a probe reaches any one of them.
* ``/metrics`` reads prometheus_client's multiprocess files, so it counts every worker's requests
  once, whichever worker answers the scrape.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from kserve import ModelServer
from kserve.protocol.dataplane import DataPlane
from prometheus_client import CollectorRegistry, exposition, multiprocess

from predictor.server import kserve_compat
from predictor.workers.board import ReadinessBoard, WorkerIdentity


class PodReadinessDataPlane(DataPlane):  # type: ignore[misc]
    """KServe's data plane, whose readiness answers speak for every worker of the pod."""

    def __init__(self, model_registry: Any, pod_ready: Callable[[], bool]) -> None:
        super().__init__(model_registry=model_registry)
        self._pod_ready = pod_ready

    async def ready(self) -> bool:
        return self._pod_ready() and bool(await super().ready())

    async def model_ready(self, model_name: str, disable_predictor_health_check: bool = False) -> bool:
        ready = bool(await super().model_ready(model_name, disable_predictor_health_check))
        # KServe's inference routes pass True: the live workers go on answering while one restarts.
        # Its readiness endpoints pass False: they answer for the pod, so every worker must be ready.
        if disable_predictor_health_check:
            return ready
        return ready and self._pod_ready()


async def multiprocess_metrics(request: Request) -> Response:
    """Every worker's metrics, summed from their files (live workers' gauges only)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    encoder, content_type = exposition.choose_encoder(request.headers.get("accept", ""))
    return Response(content=encoder(registry), headers={"content-type": content_type})


def reuse_port_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket that other processes may bind too; the kernel balances connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be named: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto is
    # IPPROTO_TCP, and accepted sockets inherit it. With 0, every answer waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class WorkerModelServer(ModelServer):  # type: ignore[misc]
    """KServe's ModelServer for one worker: shared ports, pod-wide readiness, pod-wide metrics."""

    def __init__(self, *, worker: WorkerIdentity, board: ReadinessBoard, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.worker = worker
        self.board = board
        self.dataplane = PodReadinessDataPlane(self.registered_models, board.all_ready)

    def start(self, models: list[Any]) -> None:
        kserve_compat.add_route_before_kserve("/metrics", multiprocess_metrics, methods=["GET"])
        board, index = self.board, self.worker.index
        kserve_compat.use_rest_server_on(reuse_port_socket, on_listening=lambda: board.mark(index, ready=True))
        super().start(models)
