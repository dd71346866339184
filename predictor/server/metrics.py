"""Prometheus metrics of the predictor, served by KServe's ``/metrics`` beside its own histograms.

With ``--workers N`` every worker writes its values to prometheus_client's multiprocess files
and ``/metrics`` sums them (predictor/workers/); the definitions here hold for both.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from predictor.protocol.errors import http_status

REQUESTS = Counter(
    "servekit_requests", "Inference requests answered, by protocol and status code.", ["model", "protocol", "code"]
)
REQUEST_SECONDS = Histogram(
    "servekit_request_duration_seconds",
    "Time from a decoded request to its encoded answer, by protocol.",
    ["model", "protocol"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BATCH_SIZE = Histogram(
    "servekit_batch_size",
    "Rows in each model call after dynamic batching.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
BATCH_REQUESTS = Histogram(
    "servekit_batch_requests",
    "Requests merged into each model call.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
# livesum: with several workers, the sum over the live ones (a dead worker's queue is gone).
QUEUE_DEPTH = Gauge("servekit_queue_depth", "Requests waiting for a batch.", ["model"], multiprocess_mode="livesum")
QUEUE_REJECTIONS = Counter("servekit_queue_rejections", "Requests refused because the queue was full.", ["model"])
WORKER_RESTARTS = Counter(
    "servekit_worker_restarts", "Worker processes started in place of one that died (--workers above 1)."
)
# How often a worker copies its queue depth to its metrics file (multiprocess mode only).
QUEUE_SAMPLE_S = 0.5


@dataclass
class Answer:
    """The status a counted request was answered with: 200 unless the path says otherwise (or raises)."""

    code: int = 200


class ModelMetrics:
    """The metric children of one model, bound once so the hot path skips label lookups."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._durations = {p: REQUEST_SECONDS.labels(model, p) for p in ("v1", "v2", "grpc")}
        self._counts: dict[tuple[str, int], Counter] = {}
        self._batch_rows = BATCH_SIZE.labels(model)
        self._batch_requests = BATCH_REQUESTS.labels(model)
        self.queue_depth = QUEUE_DEPTH.labels(model)
        self.rejections = QUEUE_REJECTIONS.labels(model)

    def track_queue_depth(self, read: Callable[[], int]) -> None:
        """Publish the batcher's queue depth: read at scrape time in a single server; with several
        workers, copied to this worker's metrics file every QUEUE_SAMPLE_S, since prometheus_client's
        multiprocess mode sums files and a function gauge has none."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self.queue_depth.set_function(read)
            return
        gauge = self.queue_depth

        def copy_forever() -> None:
            while True:
                gauge.set(read())
                time.sleep(QUEUE_SAMPLE_S)

        threading.Thread(target=copy_forever, name=f"queue-depth-{self.model}", daemon=True).start()

    @contextmanager
    def counted_request(self, protocol: str) -> Iterator[Answer]:
        """Count and time one request: the only place servekit_requests_total is incremented.

        Every path answers inside one of these, once: KServe's REST route and gRPC (ServingModel's
        ``__call__``) and the fast path. A path that answers an error itself sets ``answer.code``; an
        exception that escapes is counted under the status protocol/errors.py's table gives it. A
        cancelled request (the client went away) is not counted: nobody was answered.
        """
        answer = Answer()
        start = time.perf_counter()
        try:
            yield answer
        except Exception as exc:
            self._observe(protocol, http_status(exc), time.perf_counter() - start)
            raise
        self._observe(protocol, answer.code, time.perf_counter() - start)

    def _observe(self, protocol: str, code: int, seconds: float) -> None:
        counter = self._counts.get((protocol, code))
        if counter is None:
            counter = self._counts[(protocol, code)] = REQUESTS.labels(self.model, protocol, str(code))
        counter.inc()
        self._durations[protocol].observe(seconds)

    def observe_batch(self, rows: int, requests: int) -> None:
        self._batch_rows.observe(rows)
        self._batch_requests.observe(requests)
