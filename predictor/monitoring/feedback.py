"""Ground truth joined with the answer given then (pure: no I/O, no metrics).

A feedback document is ``{"id": "<request id>", "outputs": [{"name": "<output>", "datatype": ...,
"shape": [...], "data": [...]}]}``: the truth for the output the answer store keeps, one value per
row of the answered request. For a classifier each row's outcome is 1 when the true class names
the predicted one (the truth may be the class value or the manifest's label), else 0; for a
regressor it is the absolute error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from predictor.modeldir.spec import ModelSpec, OutputSpec
from predictor.monitoring.predictions import LabelNames


class FeedbackError(ValueError):
    """A feedback document that cannot be joined; the message names what is wrong (a 400)."""


@dataclass(frozen=True)
class Feedback:
    request_id: str
    truth: list[Any]


@dataclass(frozen=True)
class Judged:
    """What the model's output is judged on: a class (accuracy) or a number (absolute error)."""

    output: OutputSpec
    is_class: bool

    @property
    def name(self) -> str:
        return self.output.name


def judged_output(spec: ModelSpec) -> Judged | None:
    """The output feedback is compared with: the first class label, else the first single-value raw
    output (a regressor); None when the model has neither."""
    for output in spec.outputs:
        if output.source == "label":
            return Judged(output, is_class=True)
    for output in spec.outputs:
        if output.source == "raw" and output.shape in ([-1], [-1, 1]) and output.datatype != "BYTES":
            return Judged(output, is_class=False)
    return None


def parse_feedback(document: Any, judged: Judged) -> Feedback:
    if not isinstance(document, dict):
        raise FeedbackError(f"feedback is a JSON object with 'id' and 'outputs', got {type(document).__name__}")
    request_id = document.get("id")
    if not isinstance(request_id, str) or not request_id:
        raise FeedbackError(f"feedback needs 'id', the request id of an answered call, got {request_id!r}")
    outputs = document.get("outputs")
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise FeedbackError(f"feedback needs 'outputs', a list of tensors, got {type(outputs).__name__}")
    matching = [o for o in outputs if o.get("name") == judged.name]
    if len(matching) != 1:
        names = [o.get("name") for o in outputs]
        raise FeedbackError(f"feedback needs exactly one output named {judged.name!r} (the truth), got {names}")
    data = matching[0].get("data")
    if not isinstance(data, list) or not data:
        raise FeedbackError(f"output {judged.name!r}: 'data' must be a non-empty list of true values")
    truth = list(np.asarray(data, dtype=object).reshape(-1))
    if any(isinstance(v, (list, dict)) for v in truth):
        raise FeedbackError(f"output {judged.name!r}: 'data' must hold one true value per row, got nested values")
    return Feedback(request_id, truth)


def outcomes(judged: Judged, names: LabelNames, answer: list[Any], truth: list[Any]) -> list[float]:
    """Per-row outcome of an answer against its truth (see the module's docstring)."""
    if len(answer) != len(truth):
        raise FeedbackError(
            f"output {judged.name!r}: the answer had {len(answer)} rows, the feedback gives {len(truth)} values"
        )
    if judged.is_class:
        return [1.0 if names.name(p) == names.name(t) else 0.0 for p, t in zip(answer, truth, strict=True)]
    try:
        true_values = np.asarray(truth, dtype=np.float64)
    except (TypeError, ValueError):
        raise FeedbackError(f"output {judged.name!r}: a regressor's truth must be numbers, got {truth[:5]}") from None
    return np.abs(np.asarray(answer, dtype=np.float64) - true_values).tolist()  # type: ignore[no-any-return]
