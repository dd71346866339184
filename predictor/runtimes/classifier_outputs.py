"""What a boosted model's prediction means, and the declared outputs computed from it.

XGBoost and LightGBM boosters answer one array whose meaning depends on the objective they were
trained with: the probability of class 1 (binary), one probability per class (multiclass), a class
index (XGBoost's ``multi:softmax``) or a plain value (regression, ranking, ...). This module turns
that array into ``label`` / ``probabilities`` / ``raw`` outputs the way scikit-learn's wrappers
(``XGBClassifier``, ``LGBMClassifier``) do, so a booster answers like the estimator it came from.
Pure: no framework is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from predictor.modeldir.spec import DATATYPE_TO_NUMPY, OutputSpec
from predictor.runtimes import RuntimeLoadError, Tensors

PredictionKind = Literal["binary_probability", "class_probabilities", "class_index", "value"]


@dataclass(frozen=True)
class BoosterTask:
    """What the booster's prediction array holds (``kind``), its ``classes`` (0 unless a
    classifier) and the ``objective`` it was read from, for messages."""

    kind: PredictionKind
    classes: int
    objective: str

    @property
    def is_classifier(self) -> bool:
        return self.kind != "value"

    def sources(self) -> set[str]:
        """The output sources this booster can compute."""
        if self.kind in ("binary_probability", "class_probabilities"):
            return {"label", "probabilities", "raw"}
        if self.kind == "class_index":
            return {"label", "raw"}
        return {"raw"}


def check_outputs(task: BoosterTask, outputs: list[OutputSpec], framework: str) -> None:
    """Refuse, at load, a manifest that asks for an output this booster cannot compute."""
    for output in outputs:
        if output.source not in task.sources():
            raise RuntimeLoadError(
                f"output {output.name!r} asks for {output.source!r}, but this {framework} model's objective "
                f"{task.objective!r} gives only {sorted(task.sources())}"
            )


def probabilities(task: BoosterTask, prediction: np.ndarray) -> np.ndarray:
    """Class probabilities, one column per class: a binary booster's p(1) becomes [1 - p, p]."""
    if task.kind == "binary_probability":
        p = prediction.reshape(-1)
        return np.stack([1.0 - p, p], axis=1)
    return prediction.reshape(len(prediction), -1)


def labels(task: BoosterTask, prediction: np.ndarray) -> np.ndarray:
    """The predicted class index per row; ties go to the lower class, as ``argmax`` and sklearn do."""
    if task.kind == "binary_probability":
        return (prediction.reshape(-1) > 0.5).astype(np.int64)
    if task.kind == "class_index":
        return prediction.reshape(-1).astype(np.int64)
    return np.asarray(np.argmax(prediction.reshape(len(prediction), -1), axis=1))


def declared_outputs(task: BoosterTask, prediction: np.ndarray, outputs: list[OutputSpec]) -> Tensors:
    """Every declared output from one prediction array, cast to its declared datatype."""
    results: Tensors = {}
    for output in outputs:
        if output.source == "label":
            array = labels(task, prediction)
        elif output.source == "probabilities":
            array = probabilities(task, prediction)
        else:
            array = prediction
        results[output.name] = array.astype(DATATYPE_TO_NUMPY[output.datatype], copy=False)
    return results


def feature_count_check(declared: list[int], model_features: int, framework: str, input_name: str) -> None:
    """A booster reads a fixed number of features: the manifest's [-1, F] must agree with it."""
    if len(declared) != 2 or declared[1] != model_features:
        raise RuntimeLoadError(
            f"input {input_name!r} is declared with shape {declared}, but the {framework} model reads "
            f"{model_features} features per row: declare [-1, {model_features}]"
        )
