"""The worker side of ``--workers N``: serve as one worker of the pod, and stop with the supervisor."""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from predictor.workers.board import WORKER_ENV, ReadinessBoard, WorkerIdentity

if TYPE_CHECKING:
    import argparse

    from predictor.server.settings import PredictorSettings

logger = logging.getLogger(__name__)


def is_worker() -> bool:
    """Whether this process is a worker that a supervisor started."""
    return WORKER_ENV in os.environ


def run_worker(args: argparse.Namespace, settings: PredictorSettings, serve: Callable[..., int]) -> int:
    """Serve as one worker: ``serve`` (``predictor.server.main.serve``) with the worker's ModelServer."""
    identity = WorkerIdentity.from_env(os.environ[WORKER_ENV])
    _watch_lifeline(identity.lifeline_fd)
    from predictor.server.metrics import WORKER_RESTARTS
    from predictor.workers.worker_server import WorkerModelServer

    if identity.replacement:
        WORKER_RESTARTS.inc()
    board = ReadinessBoard(identity.board, identity.count)
    server_class: Callable[..., Any] = functools.partial(WorkerModelServer, worker=identity, board=board)
    return serve(args, settings, server_class)


def _watch_lifeline(fd: int) -> None:
    """Stop this worker (as SIGTERM would) once the supervisor is gone and the pipe reads end-of-file."""
    os.set_inheritable(fd, False)  # the worker's own children must not hold it

    def watch() -> None:
        try:
            while os.read(fd, 1):  # the supervisor never writes; b"" means it is gone
                pass
        except OSError as exc:
            logger.warning("cannot watch the supervisor (%s); this worker will not stop with it", exc)
            return
        logger.warning("the supervisor is gone; stopping this worker")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-lifeline", daemon=True).start()
