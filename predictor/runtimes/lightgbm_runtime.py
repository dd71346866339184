"""LightGBM runtime: boosters saved as text (``booster.save_model("model.txt")``).

The text format is data, not code, and the artifact's sha256 is still checked first.
Classifiers answer ``label`` and ``probabilities`` as ``LGBMClassifier`` would.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightgbm
import numpy as np

from predictor.modeldir.artifacts import verified_artifact_path
from predictor.modeldir.spec import ModelSpec
from predictor.runtimes import RuntimeLoadError, Tensors, load_failure
from predictor.runtimes.classifier_outputs import (
    BoosterTask,
    PredictionKind,
    check_outputs,
    declared_outputs,
    feature_count_check,
)

logger = logging.getLogger(__name__)

_KINDS: dict[str, PredictionKind] = {
    "binary": "binary_probability",
    "multiclass": "class_probabilities",
    "multiclassova": "class_probabilities",
}


def objective_of(model_text: str) -> str:
    """The objective's name from a model file's header (``objective=multiclass num_class:3``)."""
    for line in model_text.splitlines():
        if line.startswith("objective="):
            return line.removeprefix("objective=").split(" ")[0]
        if line.startswith("Tree="):  # the header is over
            break
    raise RuntimeLoadError("the LightGBM model text names no objective in its header (no 'objective=' line)")


def task_of(objective: str, classes_per_iteration: int) -> BoosterTask:
    kind = _KINDS.get(objective, "value")
    classes = {"binary_probability": 2, "class_probabilities": classes_per_iteration}.get(kind, 0)
    return BoosterTask(kind, classes, objective)


class LightGBMRuntime:
    """Runs one booster on the CPU."""

    def __init__(self, booster: lightgbm.Booster, task: BoosterTask, spec: ModelSpec) -> None:
        self._booster = booster
        self._task = task
        self._input = spec.inputs[0].name
        self._outputs = list(spec.outputs)
        # 0 is OpenMP's default for LightGBM (every core).
        self._threads = spec.runtime.threads

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def task(self) -> BoosterTask:
        return self._task

    def predict(self, inputs: Tensors) -> Tensors:
        # Inputs were already checked against the manifest (and its feature count at load).
        prediction = np.asarray(
            self._booster.predict(inputs[self._input], validate_features=False, num_threads=self._threads)
        )
        return declared_outputs(self._task, prediction, self._outputs)


def load_booster(path: Path) -> tuple[lightgbm.Booster, str]:
    """The booster and its model text; anything that is not a LightGBM text model is refused."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RuntimeLoadError(
            f"artifact {str(path)!r} is not text: LightGBM models are served from text files"
        ) from None
    if not text.startswith("tree\n"):
        raise RuntimeLoadError(
            f"artifact {str(path)!r} is not a LightGBM text model (it does not start with 'tree'); "
            "save one with booster.save_model('model.txt')"
        )
    try:
        return lightgbm.Booster(model_str=text), text
    except Exception as exc:  # LightGBMError for a truncated or corrupt file
        raise RuntimeLoadError(f"cannot load LightGBM artifact {str(path)!r}: {load_failure(exc)}") from None


def load(spec: ModelSpec, model_dir: Path, device: str | None, max_batch_size: int = 32) -> LightGBMRuntime:
    """``max_batch_size`` is not needed here: any batch size runs as it comes."""
    requested = device or spec.runtime.device
    if requested not in ("auto", "cpu"):
        raise RuntimeLoadError(f"this LightGBM runtime runs on the CPU only, got device {requested!r}")
    if len(spec.inputs) != 1:
        raise RuntimeLoadError(f"LightGBM models take one input tensor, the manifest declares {len(spec.inputs)}")
    path = verified_artifact_path(model_dir, spec.artifact)
    booster, text = load_booster(path)
    feature_count_check(spec.inputs[0].shape, booster.num_feature(), "LightGBM", spec.inputs[0].name)
    task = task_of(objective_of(text), booster.num_model_per_iteration())
    check_outputs(task, list(spec.outputs), "LightGBM")
    logger.info("lightgbm model %s loaded: objective %s, %d features", spec.name, task.objective, booster.num_feature())
    return LightGBMRuntime(booster, task, spec)
