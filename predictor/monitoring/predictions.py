"""What the model answered: predicted classes counted, probabilities and regression values in histograms.

Tallied once per model call (a merged batch), in the batcher's thread, into plain accumulators:
a call of at most ``SMALL`` values in Python (numpy's few microseconds per call would dominate a
single row), a larger one with numpy (``np.bincount`` of the classes, ``np.searchsorted`` +
``np.bincount`` for the buckets). A thread adds the accumulated deltas to the Prometheus children
every ``PUBLISH_S``: one increment per class or bucket per period instead of several per call
(each increment takes a lock, and in multiprocess mode writes a memory-mapped file). /metrics
therefore lags the answers by at most ``PUBLISH_S``.

Which output gets which metric follows its ``source`` in the manifest:

* ``label``: ``servekit_predictions_total{model, output, label}``, one per predicted row; ``label``
  is the manifest's ``labels[class]`` when the manifest has labels and the class is an index into
  them, else the class value as text.
* ``probabilities``: ``servekit_prediction_probability{model, output, label}``, a histogram of each
  class's probability (label as above, from the column index).
* ``raw`` with one value per row (a regressor): ``servekit_prediction_value{model, output}``.
  Wider raw outputs (a network's logits) are not observed.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any

import numpy as np
from prometheus_client import Counter, Histogram

from predictor.modeldir.spec import ModelSpec, OutputSpec

# Up to this many values in a call, plain Python counts faster than numpy's per-call overhead.
SMALL = 64
PUBLISH_S = 0.5
PREDICTIONS = Counter(
    "servekit_predictions", "Predicted rows, by output and predicted class.", ["model", "output", "label"]
)
PROBABILITY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
PROBABILITIES = Histogram(
    "servekit_prediction_probability",
    "Probability given to each class, one observation per row and class.",
    ["model", "output", "label"],
    buckets=PROBABILITY_BUCKETS,
)
# Regression outputs have no natural scale: 1-2.5-5 steps over both signs cover most targets.
_STEPS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 1e4, 1e5)
VALUE_BUCKETS = (*(-s for s in reversed(_STEPS)), 0.0, *_STEPS)
VALUES = Histogram(
    "servekit_prediction_value", "Regression outputs, one observation per row.", ["model", "output"],
    buckets=VALUE_BUCKETS,
)  # fmt: skip


class LabelNames:
    """A class value as the metrics and feedback name it: the manifest's label, else its own text."""

    def __init__(self, labels: Sequence[str] | None) -> None:
        self.labels = list(labels) if labels else None

    def name(self, value: Any) -> str:
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        if self.labels is not None and isinstance(value, (int, np.integer)) and 0 <= value < len(self.labels):
            return self.labels[int(value)]
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return self.name(int(value))  # a class index sent as 2.0 is class 2
        return str(value)

    def names(self, values: np.ndarray) -> np.ndarray:
        """Names of many values: the lookup runs once per distinct value."""
        distinct, where = np.unique(values, return_inverse=True)
        return np.asarray([self.name(v) for v in distinct], dtype=object)[where.reshape(values.shape)]


def observe_many(child: Any, values: np.ndarray) -> None:
    """``child.observe(v)`` for every value, with one increment per bucket instead of per value."""
    columns = HistogramColumns([child])
    columns.observe(values.reshape(-1, 1))
    columns.publish()


class HistogramColumns:
    """Histogram children of one bucket layout, one per column of a (rows, columns) array.

    prometheus_client's Histogram keeps one (non-cumulative) count per upper bound and a sum; a
    value goes to the first bound it does not exceed, which ``bisect_left`` and
    ``searchsorted(side="left")`` find. ``observe`` only tallies (the caller holds the lock that
    ``publish`` takes); ``publish`` adds the tallies to the children, whose values (single-process
    or multiprocess) both offer ``inc``.
    """

    def __init__(self, children: list[Any]) -> None:
        self.children = children
        self._bounds_list = [float(b) for b in children[0]._upper_bounds]
        self._bounds = np.asarray(self._bounds_list, dtype=np.float64)
        self._width = len(self._bounds_list)
        self._offsets = np.arange(len(children)) * self._width
        self._buckets = [child._buckets[b] for child in children for b in range(self._width)]
        self._sums = [child._sum for child in children]
        self._counts = [0] * len(self._buckets)
        self._totals = [0.0] * len(children)

    def observe(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        counts, totals, width = self._counts, self._totals, self._width
        if values.size <= SMALL:
            for row in values.tolist():
                for column, value in enumerate(row):
                    counts[column * width + bisect_left(self._bounds_list, value)] += 1
                    totals[column] += value
            return
        cells = np.searchsorted(self._bounds, values, side="left") + self._offsets
        tally = np.bincount(cells.ravel(), minlength=len(counts))
        for index in np.flatnonzero(tally).tolist():
            counts[index] += int(tally[index])
        for column, value in enumerate(values.sum(axis=0).tolist()):
            totals[column] += value

    def publish(self) -> None:
        for index, count in enumerate(self._counts):
            if count:
                self._buckets[index].inc(count)
                self._counts[index] = 0
        for column, total in enumerate(self._totals):
            if total:
                self._sums[column].inc(total)
                self._totals[column] = 0.0


class PredictionMetrics:
    """The prediction metrics of one model: tallied per call, published by a thread (see above)."""

    def __init__(self, model: str, spec: ModelSpec) -> None:
        self.model = model
        self.names = LabelNames(spec.labels)
        self._labels = [o.name for o in spec.outputs if o.source == "label"]
        self._counters: dict[tuple[str, Any], Counter] = {}
        self._classes: dict[tuple[str, Any], int] = {}
        self._probabilities = {
            o.name: HistogramColumns(
                [PROBABILITIES.labels(model, o.name, self.names.name(c)) for c in range(_columns(o))]
            )
            for o in spec.outputs
            if o.source == "probabilities" and _columns(o) > 0
        }
        self._values = {
            o.name: HistogramColumns([VALUES.labels(model, o.name)])
            for o in spec.outputs
            if o.source == "raw" and _one_per_row(o)
        }
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def observe(self, outputs: dict[str, np.ndarray]) -> None:
        """One model call's outputs (every declared output, rows on the first axis)."""
        with self._lock:
            for name in self._labels:
                self._tally_classes(name, outputs[name])
            for name, columns in self._probabilities.items():
                array = outputs[name]
                columns.observe(array.reshape(array.shape[0], -1))
            for name, column in self._values.items():
                column.observe(outputs[name].reshape(-1, 1))

    def publish(self) -> None:
        """Add what was tallied since the last call to the Prometheus children."""
        with self._lock:
            classes, self._classes = self._classes, {}
            for histogram in (*self._probabilities.values(), *self._values.values()):
                histogram.publish()
        for key, count in classes.items():
            counter = self._counters.get(key)
            if counter is None:
                output, value = key
                counter = self._counters[key] = PREDICTIONS.labels(self.model, output, self.names.name(value))
            counter.inc(count)

    def start(self) -> None:
        threading.Thread(target=self._publish_forever, name=f"predictions-{self.model}", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        self.publish()

    def _publish_forever(self) -> None:
        while not self._stopped.wait(PUBLISH_S):
            self.publish()

    def _tally_classes(self, output: str, classes: np.ndarray) -> None:
        flat = classes.reshape(-1)
        if flat.size <= SMALL:
            pairs: Any = Tally(flat.tolist()).items()
        elif flat.dtype.kind in "iu" and flat.min() >= 0 and flat.max() < 4096:
            counts = np.bincount(flat)  # class indices: much cheaper than sorting for unique
            distinct = np.flatnonzero(counts)
            pairs = zip(distinct.tolist(), counts[distinct].tolist(), strict=True)
        else:
            values, value_counts = np.unique(flat, return_counts=True)
            pairs = zip(values.tolist(), value_counts.tolist(), strict=True)
        tallies = self._classes
        for value, count in pairs:
            key = (output, value)
            tallies[key] = tallies.get(key, 0) + count


def _columns(output: OutputSpec) -> int:
    """Classes of a [-1, K] probabilities output; 0 when K is not fixed."""
    return output.shape[1] if len(output.shape) == 2 and output.shape[1] > 0 else 0


def _one_per_row(output: OutputSpec) -> bool:
    return output.shape in ([-1], [-1, 1]) and output.datatype != "BYTES"
