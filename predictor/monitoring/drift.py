"""Input drift: the last ``window`` rows of each profiled input against its reference, as PSI gauges.

The request path only copies a model call's rows into a ring buffer (one numpy slice assignment
per input per call, under a lock). A thread wakes every ``interval_s``, copies the buffer, and
computes each feature's population stability index (reference.py) against the profile, setting
``servekit_input_drift{model, input, feature}`` (``feature`` is the column index of the row
flattened past the batch axis). Until ``min_rows`` rows have arrived no PSI is published: a few
rows say nothing about a distribution.

``servekit_input_drift_rows{model, input}`` is how many rows the input had seen when the gauges
were last computed, so a reader knows which traffic the PSI covers.

With ``--workers N`` each worker keeps its own window of the rows it served; the pod reports the
largest PSI of the live workers (a drift that reaches one worker's clients is a drift).
"""

from __future__ import annotations

import logging
import threading

import numpy as np
from prometheus_client import Gauge

from predictor.monitoring.reference import InputReference, feature_psi

logger = logging.getLogger(__name__)

DRIFT = Gauge(
    "servekit_input_drift",
    "Population stability index of the recent input window against the reference profile, per feature.",
    ["model", "input", "feature"],
    multiprocess_mode="livemax",
)
DRIFT_ROWS = Gauge(
    "servekit_input_drift_rows",
    "Rows of the input seen when servekit_input_drift was last computed.",
    ["model", "input"],
    multiprocess_mode="livesum",
)


class RowWindow:
    """The last ``size`` rows of one input, as a ring buffer of float64 (rows, features)."""

    def __init__(self, size: int, width: int) -> None:
        self._rows = np.zeros((size, width), dtype=np.float64)
        self._next = 0  # where the next row goes
        self.seen = 0  # rows ever added
        self._lock = threading.Lock()

    def add(self, batch: np.ndarray) -> None:
        rows = batch.reshape(batch.shape[0], -1)
        size = self._rows.shape[0]
        rows = rows[-size:]  # a call larger than the window: its last rows fill it
        with self._lock:
            start = self._next
            end = start + rows.shape[0]
            if end <= size:
                self._rows[start:end] = rows
            else:
                split = size - start
                self._rows[start:] = rows[:split]
                self._rows[: end - size] = rows[split:]
            self._next = end % size
            self.seen += batch.shape[0]

    def snapshot(self) -> tuple[np.ndarray, int]:
        """A copy of the filled rows (any order: PSI does not care) and the rows seen so far."""
        with self._lock:
            filled = min(self.seen, self._rows.shape[0])
            return self._rows[:filled].copy(), self.seen


class DriftMonitor:
    """The windows of a model's profiled inputs and the thread that turns them into gauges."""

    def __init__(
        self, model: str, references: dict[str, InputReference], window: int, interval_s: float, min_rows: int
    ) -> None:
        self.model = model
        self.references = references
        self.interval_s = interval_s
        self.min_rows = min(min_rows, window)
        self.windows = {name: RowWindow(window, ref.width) for name, ref in references.items()}
        # Children appear with the first PSI: a gauge at 0 before that would read as "no drift".
        self._gauges: dict[str, list[Gauge]] = {}
        self._rows_gauges: dict[str, Gauge] = {}
        self._computed_at = dict.fromkeys(references, -1)
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def observe(self, inputs: dict[str, np.ndarray]) -> None:
        """A model call's raw inputs (as the client sent them, before scaling)."""
        for name, window in self.windows.items():
            window.add(inputs[name])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"drift-{self.model}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def compute(self) -> None:
        """Publish every input's PSI now (the thread calls this; tests may too)."""
        for name, window in self.windows.items():
            rows, seen = window.snapshot()
            if seen == self._computed_at[name] or rows.shape[0] < self.min_rows:
                continue
            if name not in self._gauges:
                width = self.references[name].width
                self._gauges[name] = [DRIFT.labels(self.model, name, str(f)) for f in range(width)]
                self._rows_gauges[name] = DRIFT_ROWS.labels(self.model, name)
            for gauge, reference, column in zip(
                self._gauges[name], self.references[name].features, rows.T, strict=True
            ):
                gauge.set(feature_psi(reference, column))
            self._rows_gauges[name].set(seen)
            self._computed_at[name] = seen

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            try:
                self.compute()
            except Exception:  # a bug here must not end the thread quietly, nor the server
                logger.exception("computing input drift for model %s failed", self.model)
