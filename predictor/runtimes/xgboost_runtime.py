"""XGBoost runtime: boosters saved as JSON or UBJSON (``save_model("m.json" / "m.ubj")``).

Both formats are data, not code, and the artifact's sha256 is still checked first. The booster
predicts in place from the request's array (no DMatrix per batch); classifiers answer ``label``
and ``probabilities`` as ``XGBClassifier`` would.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import xgboost

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

# XGBoost objective -> what Booster.predict returns for it (output_margin=False).
_KINDS: dict[str, PredictionKind] = {
    "binary:logistic": "binary_probability",
    "multi:softprob": "class_probabilities",
    "multi:softmax": "class_index",
    "binary:hinge": "class_index",
}


def task_of(objective: str, num_class: int) -> BoosterTask:
    """The booster's task from its objective name and ``num_class`` (0 or 1 outside multiclass)."""
    kind: PredictionKind = _KINDS.get(objective, "value")
    if kind == "value":
        return BoosterTask(kind, 0, objective)
    return BoosterTask(kind, 2 if objective.startswith("binary:") else num_class, objective)


def read_task(booster: xgboost.Booster) -> BoosterTask:
    config = json.loads(booster.save_config())
    learner = config["learner"]
    objective = str(learner["objective"]["name"])
    num_class = int(learner["learner_model_param"].get("num_class", "0"))
    return task_of(objective, num_class)


class XGBoostRuntime:
    """Runs one booster on the CPU."""

    def __init__(self, booster: xgboost.Booster, task: BoosterTask, spec: ModelSpec) -> None:
        self._booster = booster
        self._task = task
        self._input = spec.inputs[0].name
        self._outputs = list(spec.outputs)

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def task(self) -> BoosterTask:
        return self._task

    def predict(self, inputs: Tensors) -> Tensors:
        # inplace_predict reads the numpy array directly: no DMatrix built per batch.
        prediction = np.asarray(self._booster.inplace_predict(inputs[self._input], validate_features=False))
        return declared_outputs(self._task, prediction, self._outputs)


def load_booster(path: Path, fmt: str | None) -> xgboost.Booster:
    """A booster from a JSON or UBJSON file. It is loaded from memory, where XGBoost tells the two
    apart by their first bytes, so a file's name does not change how it is read."""
    fmt = fmt or ("xgboost_ubj" if path.suffix == ".ubj" else "xgboost_json")
    booster = xgboost.Booster()
    try:
        booster.load_model(bytearray(path.read_bytes()))
    except Exception as exc:  # XGBoostError for a corrupt or foreign file
        raise RuntimeLoadError(f"cannot load {fmt} artifact {str(path)!r}: {load_failure(exc)}") from None
    return booster


def load(spec: ModelSpec, model_dir: Path, device: str | None, max_batch_size: int = 32) -> XGBoostRuntime:
    """``max_batch_size`` is not needed here: any batch size runs as it comes."""
    requested = device or spec.runtime.device
    if requested not in ("auto", "cpu"):
        raise RuntimeLoadError(f"this XGBoost runtime runs on the CPU only, got device {requested!r}")
    if len(spec.inputs) != 1:
        raise RuntimeLoadError(f"XGBoost models take one input tensor, the manifest declares {len(spec.inputs)}")
    path = verified_artifact_path(model_dir, spec.artifact)
    booster = load_booster(path, spec.artifact.format)
    if spec.runtime.threads:
        booster.set_param({"nthread": spec.runtime.threads})
    feature_count_check(spec.inputs[0].shape, booster.num_features(), "XGBoost", spec.inputs[0].name)
    task = read_task(booster)
    check_outputs(task, list(spec.outputs), "XGBoost")
    logger.info("xgboost model %s loaded: objective %s, %d features", spec.name, task.objective, booster.num_features())
    return XGBoostRuntime(booster, task, spec)
