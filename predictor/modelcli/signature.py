"""A model's signature, read from the model itself: the manifest's inputs, outputs, labels and
feature names, as ``pack`` writes them.

Each reader loads the model with its own framework (imported only then) and keeps what the
manifest needs; the rules that turn what it found into tensors are plain functions below them.
Output dimensions that a model does not state (-1 past the batch axis) are filled in by ``pack``
from one sample run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from predictor.modelcli.detect import Detected
from predictor.modelcli.errors import CommandError
from predictor.runtimes import RuntimeLoadError, install_hint, load_failure

FEATURES = "features"


@dataclass
class Signature:
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    summary: str  # one line for the user: what pack understood the model to be
    labels: list[str] | None = None
    feature_order: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    runtime: dict[str, Any] = field(default_factory=dict)  # manifest runtime settings the model needs


def read_signature(detected: Detected, path: Path, signature_name: str | None = None) -> Signature:
    readers = {"onnx": _onnx, "xgboost": _xgboost, "lightgbm": _lightgbm, "sklearn": _sklearn}
    try:
        if detected.framework == "tensorflow":
            return _tensorflow(path, signature_name)
        return readers[detected.framework](path, detected)
    except ImportError as exc:
        raise CommandError(
            f"{path.name} is a {detected.framework} model, but {exc.name} is not installed; "
            f"{install_hint(detected.framework)}"
        ) from None
    except RuntimeLoadError as exc:
        raise CommandError(f"{path.name}: {exc}") from None


# ---- the rules ------------------------------------------------------------------------------


def feature_input(count: int) -> dict[str, Any]:
    if count < 1:
        raise CommandError(f"the model reads {count} features per row; a servable model reads at least one")
    return {"name": FEATURES, "datatype": "FP32", "shape": [-1, count]}


def classifier_outputs(classes: int, with_label: bool = True) -> list[dict[str, Any]]:
    outputs = [{"name": "probabilities", "datatype": "FP32", "shape": [-1, classes], "source": "probabilities"}]
    if with_label:
        outputs.insert(0, {"name": "label", "datatype": "INT64", "shape": [-1], "source": "label"})
    return outputs


def value_output(datatype: str) -> dict[str, Any]:
    """A regressor's prediction in the precision the framework computes it (a value of 260 keeps
    only 5 decimals in FP32): [-1] for one target; pack makes it [-1, k] for k from the sample."""
    return {"name": "prediction", "datatype": datatype, "shape": [-1], "source": "raw"}


def given_feature_names(names: list[str] | None, count: int) -> list[str] | None:
    """Feature names worth a ``feature_order``: the model's own, not a framework's stand-ins
    (LightGBM's Column_0, XGBoost's f0), and one per feature."""
    if not names or len(names) != count or len(set(names)) != count:
        return None
    if all(re.fullmatch(r"(Column_|f|x)\d+", n) for n in names):
        return None
    return [str(n) for n in names]


def onnx_tensor(name: str, onnx_type: str, shape: list[Any], kind: str) -> dict[str, Any]:
    """A graph input or output as a manifest tensor; the first axis must be a free batch axis."""
    from predictor.runtimes.onnx_providers import datatype_of, declared_dims

    hint = "torch.onnx.export dynamic_shapes / dynamic_axes, skl2onnx initial_types [None, F]"
    return batched_tensor(name, datatype_of(onnx_type, name), declared_dims(shape), f"graph {kind}", hint)


def batched_tensor(name: str, datatype: str, dims: list[int], what: str, hint: str) -> dict[str, Any]:
    """A model's tensor as a manifest tensor, refused unless its first axis is a free batch axis."""
    if not dims:
        raise CommandError(f"{what} {name!r} is a scalar; served tensors have a batch axis first")
    if dims[0] != -1:
        raise CommandError(
            f"{what} {name!r} has a fixed first dimension {dims[0]} (shape {dims}); the predictor merges "
            f"requests on the first axis: export it with a free batch axis ({hint})"
        )
    return {"name": name, "datatype": datatype, "shape": dims}


# ---- the readers ------------------------------------------------------------------------------


def _onnx(path: Path, _: Detected) -> Signature:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CommandError(f"{path.name} is not an ONNX graph onnxruntime can load: {load_failure(exc)}") from None
    inputs = [onnx_tensor(i.name, i.type, list(i.shape), "input") for i in session.get_inputs()]
    outputs = [onnx_tensor(o.name, o.type, list(o.shape), "output") for o in session.get_outputs()]
    names = ", ".join(t["name"] for t in inputs)
    return Signature(inputs, outputs, f"ONNX graph: inputs {names}; outputs {', '.join(o['name'] for o in outputs)}")


def _tensorflow(path: Path, signature_name: str | None) -> Signature:
    from predictor.runtimes import tensorflow_runtime as tfr

    function = tfr.signature_of(tfr.load_saved_model(path), signature_name)
    hint = "tf.TensorSpec([None, ...]) in the signature's input_signature"
    inputs = [batched_tensor(n, t, d, "signature input", hint) for n, (t, d) in tfr.inputs_of(function).items()]
    outputs = [batched_tensor(n, t, d, "signature output", hint) for n, (t, d) in tfr.outputs_of(function).items()]
    chosen = signature_name or tfr.DEFAULT_SIGNATURE
    summary = (
        f"TensorFlow SavedModel, signature {chosen}: inputs {', '.join(t['name'] for t in inputs)}; "
        f"outputs {', '.join(o['name'] for o in outputs)}"
    )
    return Signature(inputs, outputs, summary, runtime={"signature": signature_name} if signature_name else {})


def _xgboost(path: Path, detected: Detected) -> Signature:
    from predictor.runtimes import xgboost_runtime

    booster = xgboost_runtime.load_booster(path, detected.format)
    task = xgboost_runtime.read_task(booster)
    count = booster.num_features()
    names = given_feature_names(list(booster.feature_names or []), count)
    return _booster_signature("XGBoost", task, count, names, "FP32")  # XGBoost predicts in float32


def _lightgbm(path: Path, _: Detected) -> Signature:
    from predictor.runtimes import lightgbm_runtime

    booster, text = lightgbm_runtime.load_booster(path)
    task = lightgbm_runtime.task_of(lightgbm_runtime.objective_of(text), booster.num_model_per_iteration())
    count = booster.num_feature()
    names = given_feature_names(list(booster.feature_name()), count)
    return _booster_signature("LightGBM", task, count, names, "FP64")  # LightGBM predicts in float64


def _booster_signature(framework: str, task: Any, count: int, names: list[str] | None, values: str) -> Signature:
    if task.kind in ("binary_probability", "class_probabilities"):
        outputs = classifier_outputs(task.classes)
        what = f"classifier, {task.classes} classes"
    elif task.kind == "class_index":
        outputs = [{"name": "label", "datatype": "INT64", "shape": [-1], "source": "label"}]
        what = "classifier answering class indices only"
    else:
        outputs = [value_output(values)]
        what = "regressor/ranker (raw prediction)"
    summary = f"{framework} {what}: objective {task.objective}, {count} features"
    return Signature([feature_input(count)], outputs, summary, feature_order=names)


def _sklearn(path: Path, _: Detected) -> Signature:
    import joblib
    import numpy as np

    try:
        estimator = joblib.load(path)
    except Exception as exc:
        raise CommandError(f"{path.name} cannot be unpickled: {type(exc).__name__}: {exc}") from None
    kind = type(estimator).__name__
    count = getattr(estimator, "n_features_in_", None)
    if not isinstance(count, int) or not callable(getattr(estimator, "predict", None)):
        raise CommandError(
            f"{path.name} holds a {kind}, not a fitted scikit-learn estimator with n_features_in_ and predict(); "
            "fit it on a 2-D array before saving it"
        )
    names = getattr(estimator, "feature_names_in_", None)
    order = given_feature_names([str(n) for n in names] if names is not None else None, count)
    classes = getattr(estimator, "classes_", None)
    if classes is None or not callable(getattr(estimator, "predict_proba", None)):
        return Signature(
            [feature_input(count)], [value_output("FP64")], f"scikit-learn {kind}: {count} features", None, order
        )
    classes = np.asarray(classes)
    numeric = classes.dtype.kind in "iub"
    signature = Signature(
        [feature_input(count)],
        classifier_outputs(len(classes), with_label=numeric),
        f"scikit-learn {kind} classifier: {len(classes)} classes, {count} features",
        [str(c) for c in classes],
        order,
    )
    if not numeric:
        signature.notes.append(
            f"the classes are {classes.dtype} values, not integers: only 'probabilities' is declared, "
            "its columns in the order of 'labels'"
        )
    return signature
