"""In-process dynamic batching: merge concurrent requests for one model into one model call.

Models (scikit-learn, PyTorch) answer one call of 32 rows far faster than 32 calls of one row, and a
server at thousands of requests per second has many requests in flight at once. The batcher queues
requests, merges compatible ones along axis 0, runs the model once off the event loop, and hands
each caller back exactly its own rows.

Design choices, each for a reason:

* One worker task per batcher, a deque and an ``asyncio.Event``: no task per request, because
  this sits on the hot path.
* ``run_batch`` runs in an executor (by default one thread that the batcher owns), so the loop
  keeps answering health probes during a slow predict; one batch at a time, because many models
  are not thread-safe and one big batch beats two half ones. The next batch forms meanwhile.
* A failing merged batch is re-run request by request, so one bad request cannot fail its
  batch-mates, and the guilty caller gets the model's own exception (a ``ValueError`` stays a 400).
* Everything the batcher hands out goes through futures that it settles exactly once; cancelled
  callers are dropped before their batch starts, or their rows are discarded if it already has.

The batcher must be used from one event loop thread; ``run_batch`` is the only code that runs
elsewhere. It imports nothing from kserve, so it is testable without a server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from itertools import chain

import numpy as np

from predictor.batching.requests import (
    BatcherClosedError,
    BatchingConfig,
    BatchOutputError,
    QueuedRequest,
    QueueFullError,
    Tensors,
    check_outputs,
    describe_rows,
    settle,
    settle_error,
)

logger = logging.getLogger(__name__)


# A queue-full hint beyond this is noise: the client should back off and the autoscaler act.
_MAX_RETRY_AFTER_S = 60.0
# Weight of the newest batch in the moving average of service time per request.
_EWMA_WEIGHT = 0.2


class DynamicBatcher:
    """Merges concurrent ``submit()`` calls into model calls of up to ``max_batch_size`` rows.

    ``run_batch`` is the synchronous model call: it takes merged inputs and returns outputs with
    the same number of rows. It runs in ``executor`` or, when that is None, in a single thread
    that the batcher owns and shuts down in ``close()``. ``on_batch(rows, requests)`` is called on
    the loop thread before every model call (re-runs that isolate a failure included), for metrics.
    """

    def __init__(
        self,
        run_batch: Callable[[Tensors], Tensors],
        config: BatchingConfig,
        executor: concurrent.futures.Executor | None = None,
        *,
        name: str = "model",
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        """Nothing here touches an event loop, so the batcher can be built before the server starts."""
        self.name = name
        self.config = config
        self._run_batch = run_batch
        self._on_batch = on_batch
        self._owns_executor = executor is None
        self._executor: concurrent.futures.Executor = executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"batcher-{name}"
        )
        self._latency_s = config.max_latency_ms / 1000.0
        self._queue: deque[QueuedRequest] = deque()
        self._held: list[QueuedRequest] = []  # skipped as incompatible while a batch forms; go back in front
        self._forming: list[QueuedRequest] = []
        self._running: list[QueuedRequest] = []
        self._pending = 0
        self._closed = False
        self._seconds_per_request = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None

    @property
    def queue_depth(self) -> int:
        """Requests accepted but not yet started (queued or in the batch being formed)."""
        return self._pending

    async def submit(self, inputs: Tensors, model_call_ns: list[int] | None = None) -> Tensors:
        """This request's rows of every output, in the order the model returned the outputs.

        ``model_call_ns``, when given, receives the wall-clock start and end (ns) of the model call
        that answered this request, so a tracer can tell queue wait from model time.

        Raises ValueError for inputs that cannot be batched, QueueFullError when
        ``max_queue_size`` requests are already waiting, BatcherClosedError after ``close()``,
        BatchOutputError when the model's outputs cannot be split, and otherwise whatever
        ``run_batch`` raised for this request. The arrays may be views into the merged output.
        """
        if self._closed:
            raise BatcherClosedError(f"batcher for {self.name!r} is closed")
        rows, signature = describe_rows(inputs)
        if self._pending >= self.config.max_queue_size:
            raise self._queue_full()
        loop = asyncio.get_running_loop()
        wakeup = self._ensure_worker(loop)
        future: asyncio.Future[Tensors] = loop.create_future()
        request = QueuedRequest(inputs, rows, signature, future, loop.time(), model_call_ns=model_call_ns)
        self._queue.append(request)
        self._pending += 1
        wakeup.set()
        try:
            return await future
        except asyncio.CancelledError:
            # The client went away. The worker skips a request whose future is done, so it never
            # runs; if the future had already been settled, the task's wake-up retrieved it.
            self._leave_queue(request)
            raise

    async def close(self, *, drain: bool = False) -> None:
        """Stop accepting requests and wait for the running batch to finish; idempotent.

        Requests that have not started fail with BatcherClosedError, or with ``drain=True`` are
        run first. The batch already running always completes, so no caller loses an answer the
        model is computing. Then the executor the batcher owns (if any) is shut down.
        """
        if not self._closed:
            self._closed = True
            if not drain:
                self._fail_waiting(f"batcher for {self.name!r} closed before this request ran")
            if self._wakeup is not None:
                self._wakeup.set()
        worker = self._worker
        try:
            if worker is not None and not worker.done() and self._loop is asyncio.get_running_loop():
                await asyncio.wait({worker})  # unlike awaiting it, never raises and never cancels it
        finally:
            if self._owns_executor:
                self._executor.shutdown(wait=False)

    def _ensure_worker(self, loop: asyncio.AbstractEventLoop) -> asyncio.Event:
        """Start the worker on first use, in the caller's loop; restart it if its loop has ended.

        Lazy, so a batcher made at import or model-load time (no loop yet) works, and a test suite
        that calls asyncio.run() several times with one batcher does too.
        """
        if self._worker is not None and not self._worker.done() and self._wakeup is not None:
            if self._loop is loop:
                return self._wakeup
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError(f"batcher for {self.name!r} is already in use by another event loop")
        if self._loop is not loop:
            # Requests left by a loop that was closed without cancelling them can never be answered.
            self._queue.clear()
            self._held.clear()
            self._forming = []
            self._running = []
            self._pending = 0
        self._loop = loop
        self._wakeup = asyncio.Event()
        self._worker = loop.create_task(self._work(), name=f"batcher-{self.name}")
        return self._wakeup

    def _leave_queue(self, request: QueuedRequest) -> None:
        if request.waiting:
            request.waiting = False
            self._pending -= 1

    def _queue_full(self) -> QueueFullError:
        """The error for a full queue, with a Retry-After from the recent service time."""
        drain_s = self._pending * self._seconds_per_request
        retry_after = min(_MAX_RETRY_AFTER_S, max(1.0, float(math.ceil(drain_s))))
        return QueueFullError(
            f"batcher for {self.name!r} has {self._pending} requests waiting "
            f"(max_queue_size={self.config.max_queue_size}); retry in {retry_after:g} s",
            retry_after,
        )

    def _fail_waiting(self, message: str, *, include_running: bool = False) -> None:
        """Fail every request not yet answered, each with its own exception instance."""
        groups: list[Iterable[QueuedRequest]] = [self._queue, self._held, self._forming]
        if include_running:
            groups.append(self._running)
        for request in chain.from_iterable(groups):
            self._leave_queue(request)
            settle_error(request.future, BatcherClosedError(message))
        self._queue.clear()
        self._held.clear()
        self._forming = []

    async def _work(self) -> None:
        """The only consumer: form a batch, run it, repeat, until closed and drained."""
        try:
            while (batch := await self._next_batch()) is not None:
                await self._execute(batch)
        except Exception:
            # A bug here must not leave callers hanging; the finally fails them, the next submit restarts.
            logger.exception("batcher worker for %r crashed", self.name)
        finally:
            self._fail_waiting(f"batcher worker for {self.name!r} stopped", include_running=True)

    async def _next_batch(self) -> list[QueuedRequest] | None:
        """The next batch, oldest request first; None when closed and nothing is left to run.

        It waits for batch-mates until ``max_latency_ms`` after the oldest request arrived, so a
        request that already waited through the previous batch is not held again, and stops
        early when the batch is full or the batcher closes. Requests already queued are merged
        even with ``max_latency_ms=0``; only ``max_batch_size=1`` turns merging off.
        """
        head = await self._take_head()
        if head is None:
            return None
        batch = self._forming = [head]
        if self.config.max_batch_size == 1 or head.rows >= self.config.max_batch_size:
            return batch
        deadline = head.enqueued_at + self._latency_s
        try:
            rows, full = self._gather(batch, head.rows)
            while not full and not self._closed and await self._wait_until(deadline):
                rows, full = self._gather(batch, rows)
        finally:
            self._queue.extendleft(reversed(self._held))  # back in front, in their order
            self._held.clear()
        return batch

    async def _take_head(self) -> QueuedRequest | None:
        """The oldest live request, waiting for one if the queue is empty."""
        assert self._wakeup is not None
        while True:
            while self._queue:
                request = self._queue.popleft()
                if not request.future.done():
                    return request
            if self._closed:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()

    def _gather(self, batch: list[QueuedRequest], rows: int) -> tuple[int, bool]:
        """Move queued requests compatible with ``batch`` into it, FIFO; return (rows, full).

        Incompatible requests are set aside and go back to the front of the queue afterwards, so
        the oldest of them heads the very next batch: later requests can pass it by one batch at
        most. A compatible request that does not fit ends the batch, so nothing jumps it either.
        """
        signature = batch[0].signature
        limit = self.config.max_batch_size
        queue = self._queue
        while queue:
            request = queue.popleft()
            if request.future.done():
                continue  # its caller went away
            if request.signature != signature:
                self._held.append(request)
            elif rows + request.rows > limit:
                queue.appendleft(request)
                return rows, True
            else:
                batch.append(request)
                rows += request.rows
        return rows, rows >= limit

    async def _wait_until(self, deadline: float) -> bool:
        """Wait for a new request until ``deadline``; False if the deadline came first."""
        assert self._wakeup is not None and self._loop is not None
        self._wakeup.clear()
        if self._loop.time() >= deadline:
            return False
        try:
            async with asyncio.timeout_at(deadline):
                await self._wakeup.wait()
        except TimeoutError:
            return False
        return True

    async def _execute(self, batch: list[QueuedRequest]) -> None:
        """Run one formed batch; every live request in it is settled when this returns."""
        live = [request for request in batch if not request.future.done()]
        for request in live:
            self._leave_queue(request)
        self._forming = []
        self._running = live
        try:
            if len(live) == 1:
                await self._run_single(live[0])
            elif live:
                await self._run_merged(live)
        finally:
            self._running = []

    async def _run_single(self, request: QueuedRequest) -> None:
        """Run one request unmerged: its arrays go in and the model's come out, with no copy."""
        started = time.time_ns()
        try:
            outputs = check_outputs(await self._invoke(request.inputs, request.rows, 1), request.rows)
        except Exception as error:  # the model's own exception object, so a ValueError stays one
            settle_error(request.future, error)
            return
        _stamp([request], started)
        settle(request.future, outputs)

    async def _run_merged(self, requests: list[QueuedRequest]) -> None:
        """Concatenate, run once, and give each request its slice of every output."""
        rows = sum(request.rows for request in requests)
        try:
            names = requests[0].inputs.keys()
            merged = {name: np.concatenate([r.inputs[name] for r in requests], axis=0) for name in names}
            started = time.time_ns()
            outputs = await self._invoke(merged, rows, len(requests))
        except Exception as error:
            await self._isolate(requests, error)
            return
        _stamp(requests, started)
        try:
            check_outputs(outputs, rows)
        except BatchOutputError as error:
            for request in requests:  # a model bug, not one request's fault: re-running would not help
                settle_error(request.future, BatchOutputError(str(error)))
            return
        start = 0
        for request in requests:
            stop = start + request.rows
            settle(request.future, {name: array[start:stop] for name, array in outputs.items()})
            start = stop

    async def _isolate(self, requests: list[QueuedRequest], error: Exception) -> None:
        """Re-run a failed merged batch one request at a time, so only the guilty callers fail."""
        logger.info(
            "batch of %d requests for %r failed (%s: %s); re-running each alone to isolate the failure",
            len(requests),
            self.name,
            type(error).__name__,
            error,
        )
        for request in requests:
            if not request.future.done():
                await self._run_single(request)

    async def _invoke(self, inputs: Tensors, rows: int, requests: int) -> Tensors:
        """One model call in the executor, timed for the queue-full Retry-After estimate."""
        self._notify(rows, requests)
        assert self._loop is not None
        started = time.perf_counter()
        try:
            return await self._loop.run_in_executor(self._executor, self._run_batch, inputs)
        finally:
            per_request = (time.perf_counter() - started) / requests
            previous = self._seconds_per_request
            self._seconds_per_request = (
                per_request if previous == 0 else previous + _EWMA_WEIGHT * (per_request - previous)
            )

    def _notify(self, rows: int, requests: int) -> None:
        """Call the metrics hook; a broken hook must never fail a prediction."""
        if self._on_batch is None:
            return
        try:
            self._on_batch(rows, requests)
        except Exception:
            logger.exception("on_batch hook for %r failed", self.name)


def _stamp(requests: list[QueuedRequest], started_ns: int) -> None:
    """Hand the model call's start and end to the requests that asked for them (model_call_ns)."""
    ended_ns = time.time_ns()
    for request in requests:
        if request.model_call_ns is not None:
            request.model_call_ns[:] = (started_ns, ended_ns)
