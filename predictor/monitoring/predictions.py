"""What the model answered: predicted classes counted, probabilities and regression values in histograms.

Counted once per model call (a merged batch), in the batcher's thread, with numpy doing the work:
``np.unique`` for the classes, ``np.searchsorted`` + ``np.bincount`` for histogram buckets, so the
Python work per call is one step per class or bucket, never per row.

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

from collections.abc import Sequence
from typing import Any

import numpy as np
from prometheus_client import Counter, Histogram

from predictor.modeldir.spec import ModelSpec, OutputSpec

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
    """``child.observe(v)`` for every value, with one increment per bucket instead of per value.

    prometheus_client's Histogram keeps one (non-cumulative) count per upper bound and a sum; a
    value goes to the first bound it does not exceed, which is what ``searchsorted(side="left")``
    finds. Works for single-process and multiprocess values alike (both offer ``inc``).
    """
    if values.size == 0:
        return
    bounds = child._upper_bounds
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for index in np.flatnonzero(counts):
        child._buckets[index].inc(int(counts[index]))
    child._sum.inc(float(values.sum()))


class PredictionMetrics:
    """The prediction metrics of one model, its children bound as they first appear."""

    def __init__(self, model: str, spec: ModelSpec) -> None:
        self.model = model
        self.names = LabelNames(spec.labels)
        self._labels = [o.name for o in spec.outputs if o.source == "label"]
        self._probabilities = [o.name for o in spec.outputs if o.source == "probabilities"]
        self._values = [o.name for o in spec.outputs if o.source == "raw" and _one_per_row(o)]
        self._counters: dict[tuple[str, Any], Counter] = {}
        self._probability_children: dict[tuple[str, int], Any] = {}
        self._value_children = {name: VALUES.labels(model, name) for name in self._values}

    def observe(self, outputs: dict[str, np.ndarray]) -> None:
        """One model call's outputs (every declared output, rows on the first axis)."""
        for name in self._labels:
            self._count_classes(name, outputs[name])
        for name in self._probabilities:
            self._observe_probabilities(name, outputs[name])
        for name in self._values:
            observe_many(self._value_children[name], np.asarray(outputs[name], dtype=np.float64).reshape(-1))

    def _count_classes(self, output: str, classes: np.ndarray) -> None:
        distinct, counts = np.unique(classes.reshape(-1), return_counts=True)
        for value, count in zip(distinct.tolist(), counts.tolist(), strict=True):
            counter = self._counters.get((output, value))
            if counter is None:
                counter = self._counters[(output, value)] = PREDICTIONS.labels(
                    self.model, output, self.names.name(value)
                )
            counter.inc(count)

    def _observe_probabilities(self, output: str, probabilities: np.ndarray) -> None:
        columns = probabilities.reshape(probabilities.shape[0], -1).astype(np.float64, copy=False)
        for column in range(columns.shape[1]):
            child = self._probability_children.get((output, column))
            if child is None:
                child = PROBABILITIES.labels(self.model, output, self.names.name(column))
                self._probability_children[(output, column)] = child
            observe_many(child, columns[:, column])


def _one_per_row(output: OutputSpec) -> bool:
    return output.shape in ([-1], [-1, 1]) and output.datatype != "BYTES"
