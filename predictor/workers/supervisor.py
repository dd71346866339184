"""``--workers N``: N server processes in one pod, sharing its REST and gRPC ports.

One Python process in front of a GPU cannot keep it busy (issue 11 measured 46 % at 256
connections), and on Kubernetes a GPU is not shared between pods, so the pod itself must run
several server processes.

KServe's own ``workers`` does not fit: its parent loads the model and pickles it (CUDA tensors
included) into uvicorn children that share one REST socket, gRPC stays in the parent with its
one model copy, a child that dies is replaced silently, and the children never see the lean v2
route this predictor installs. So:

* The supervisor (the process ``python -m predictor`` started) checks the settings, the ports
  and the manifest, then starts N workers as fresh interpreters (``subprocess``: nothing is
  forked, so no child inherits a CUDA context). It never imports torch or loads the model.
* Each worker is ``python -m predictor`` with the same flags and environment plus
  ``SERVEKIT_WORKER``: it loads its own model copy with its own batcher, and serves REST and gRPC
  on sockets bound with SO_REUSEPORT (worker.py, worker_server.py), so the kernel spreads connections over
  the workers that listen. A worker binds only after its model loaded.
* Readiness: one byte per worker in a shared file (``ReadinessBoard``). A worker sets its byte
  once it listens; the supervisor clears it when the worker dies or the server stops. The
  readiness endpoints, answered by whichever worker a probe reaches, say ready only when every
  byte is set. Inference is not gated: the live workers go on answering.
* A worker that dies after it was ready is logged (pid, exit code or signal), the pod reports
  not ready, and a replacement starts; more than ``MAX_RESTARTS`` deaths within
  ``RESTART_WINDOW_S`` stop the server with exit code 1, so Kubernetes restarts the container.
  A worker that exits before it was ready (its model cannot load) stops the server with its code.
* Metrics: prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set for the
  workers), so /metrics, from any worker, counts every worker's requests once, KServe's too.
* SIGTERM or SIGINT to the supervisor goes to every worker as SIGTERM, and each drains as a single
  server does; one still running after ``STOP_GRACE_S`` is killed. A worker whose supervisor
  vanished (SIGKILL) sees its lifeline pipe close and stops itself: no orphan keeps the port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from predictor.workers.board import METRICS_DIR_ENV, WORKER_ENV, ReadinessBoard, WorkerIdentity

if TYPE_CHECKING:
    from predictor.server.settings import PredictorSettings

logger = logging.getLogger(__name__)

MAX_RESTARTS = 5
RESTART_WINDOW_S = 600.0
# KServe's ModelServer gives uvicorn and gRPC 30 s to drain; a worker gets a little more before SIGKILL.
STOP_GRACE_S = 40.0
POLL_S = 0.1


@dataclass
class RestartBudget:
    """At most ``limit`` restarts within any ``window_s`` seconds: a worker that keeps dying is a
    fault to surface (the container restarts), not to hide behind endless replacements."""

    limit: int = MAX_RESTARTS
    window_s: float = RESTART_WINDOW_S
    _times: deque[float] = field(default_factory=deque)

    def allow(self, now: float) -> bool:
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


def describe_exit(returncode: int) -> str:
    """``Popen.returncode`` in words: negative numbers are the signal that ended the process."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def worker_environment(
    base: Mapping[str, str], identity: WorkerIdentity, metrics_dir: Path, cpus: int
) -> dict[str, str]:
    """A worker's environment: the supervisor's (so every PREDICTOR_* setting reaches it) plus its identity."""
    env = dict(base)
    env[WORKER_ENV] = identity.to_env()
    env[METRICS_DIR_ENV] = str(metrics_dir)
    # N workers each running one intra-op thread per core (torch, BLAS) would fight over the cores;
    # split them, unless the user chose.
    env.setdefault("OMP_NUM_THREADS", str(max(1, cpus // identity.count)))
    return env


# ---- the supervisor -------------------------------------------------------------------------------


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes]


class Supervisor:
    """Starts ``count`` workers running ``command``, replaces one that dies, stops them all on SIGTERM."""

    def __init__(self, command: Sequence[str], count: int, run_dir: Path, metrics_dir: Path) -> None:
        self.command = list(command)
        self.count = count
        self.metrics_dir = metrics_dir
        self.board = ReadinessBoard.create(run_dir / "ready", count)
        # Workers hold the read end; it reaches end-of-file once this process is gone, however it died.
        self._lifeline_read, self._lifeline_write = os.pipe()
        self._workers: list[_Worker] = []
        self._restarts = RestartBudget()
        self._stop_signal: int | None = None
        self._cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT (exit code 0) or until the workers cannot go on (non-zero)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            self._workers = [self._start(index, replacement=False) for index in range(self.count)]
            while self._stop_signal is None:
                code = self._check_workers()
                if code is not None:
                    self._stop_all()
                    return code
                time.sleep(POLL_S)
            logger.info("%s received: stopping %d workers", signal.Signals(self._stop_signal).name, self.count)
            self._stop_all()
            return 0
        finally:
            self.board.close()
            os.close(self._lifeline_read)
            os.close(self._lifeline_write)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signum

    def _start(self, index: int, *, replacement: bool) -> _Worker:
        identity = WorkerIdentity(index, self.count, self.board.path, self._lifeline_read, replacement)
        env = worker_environment(os.environ, identity, self.metrics_dir, self._cpus)
        process = subprocess.Popen(self.command, env=env, stdin=subprocess.DEVNULL, pass_fds=(self._lifeline_read,))
        logger.info(
            "worker %d of %d started (pid %d)%s",
            index,
            self.count,
            process.pid,
            ", replacing the one that died" if replacement else "",
        )
        return _Worker(index, process)

    def _check_workers(self) -> int | None:
        """Handle workers that exited; None while serving goes on, else the server's exit code."""
        for slot, worker in enumerate(self._workers):
            returncode = worker.process.poll()
            if returncode is None:
                continue
            was_ready = self.board.is_ready(worker.index)
            self.board.mark(worker.index, ready=False)
            _forget_live_gauges(worker.process.pid, self.metrics_dir)
            what = f"worker {worker.index} (pid {worker.process.pid}) {describe_exit(returncode)}"
            if not was_ready:
                logger.error("%s before it was ready; stopping the server", what)
                return returncode if returncode > 0 else 1
            if not self._restarts.allow(time.monotonic()):
                logger.error(
                    "%s: more than %d worker deaths within %.0f s; stopping the server",
                    what,
                    self._restarts.limit,
                    self._restarts.window_s,
                )
                return 1
            logger.error("%s; the pod reports not ready until its replacement is ready", what)
            self._workers[slot] = self._start(worker.index, replacement=True)
        return None

    def _stop_all(self) -> None:
        """SIGTERM every worker, then wait for each to drain; kill those past the grace period."""
        self.board.clear()  # not ready from now on, whichever worker a probe reaches
        live = [worker for worker in self._workers if worker.process.poll() is None]
        for worker in live:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in live:
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning(
                    "worker %d (pid %d) still running %.0f s after SIGTERM; killing it",
                    worker.index,
                    worker.process.pid,
                    STOP_GRACE_S,
                )
                worker.process.kill()
                worker.process.wait()


def _forget_live_gauges(pid: int, metrics_dir: Path) -> None:
    """A dead worker's queue depth must not stay in the sum; its counters stay counted."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(metrics_dir))  # type: ignore[no-untyped-call]


def metrics_directory(run_dir: Path) -> Path:
    """Where the workers' metric files go: ``PROMETHEUS_MULTIPROC_DIR`` if the user set it (emptied of
    old ``*.db`` files, as prometheus_client asks), else a folder of this run."""
    chosen = os.environ.get(METRICS_DIR_ENV)
    if not chosen:
        path = run_dir / "metrics"
        path.mkdir()
        return path
    path = Path(chosen)
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()
    return path


def supervise(argv: Sequence[str], settings: PredictorSettings) -> int:
    """Run ``settings.workers`` workers of ``python -m predictor <argv>`` until SIGTERM; the exit code.

    Raises SpecError for a bad manifest, so it fails once here rather than in every worker.
    """
    from predictor.modeldir.spec import load_spec

    load_spec(settings.model_dir)
    # /tmp: the chart's pods have a read-only root filesystem and an emptyDir there.
    run_dir = Path(tempfile.mkdtemp(prefix="servekit-workers-"))
    try:
        command = [sys.executable, "-m", "predictor", *argv]
        return Supervisor(command, settings.workers, run_dir, metrics_directory(run_dir)).run()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
