"""TensorFlow runtime: a SavedModel directory, served through one of its signatures.

The signature is chosen by name (the manifest's ``runtime.signature``, ``serving_default`` when
unset) and keeps its own input and output names; the load checks the manifest against it. The
directory's sha256 (its listing's, see modeldir/artifacts.py) is checked before TensorFlow reads it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

# TensorFlow's C++ start-up chatter (CPU features, oneDNN) goes straight to stderr, around the
# server's own log format; keep its warnings and errors, drop the information lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
import tensorflow as tf

from predictor.modeldir.artifacts import verified_artifact_path
from predictor.modeldir.spec import DATATYPE_TO_NUMPY, ModelSpec
from predictor.runtimes import RuntimeLoadError, Tensors, load_failure
from predictor.runtimes.signatures import Signature, check_declared

logger = logging.getLogger(__name__)
DEFAULT_SIGNATURE = "serving_default"
_NUMPY_TO_DATATYPE = {numpy: datatype for datatype, numpy in DATATYPE_TO_NUMPY.items()}


def datatype_of(dtype: Any, name: str) -> str:
    """A TensorFlow dtype as a protocol datatype (tf.string is BYTES)."""
    if dtype == tf.string:
        return "BYTES"
    datatype = _NUMPY_TO_DATATYPE.get(np.dtype(dtype.as_numpy_dtype).name) if dtype.is_numpy_compatible else None
    if datatype is None:
        raise RuntimeLoadError(f"signature tensor {name!r} has dtype {dtype.name}, which is not served here")
    return datatype


def tensors_of(specs: dict[str, Any]) -> Signature:
    """name -> (datatype, dims) for a signature's TensorSpecs; unknown dimensions are -1."""
    result: Signature = {}
    for name, spec in sorted(specs.items()):  # a signature keeps no order of its own
        if spec.shape.rank is None:
            raise RuntimeLoadError(
                f"signature tensor {name!r} has no known rank; export it with a shape like [None, 4]"
            )
        result[name] = (datatype_of(spec.dtype, name), [-1 if d is None else int(d) for d in spec.shape.as_list()])
    return result


def signature_of(loaded: Any, name: str | None) -> Any:
    """The concrete function of the named signature, or a refusal listing the ones there are."""
    wanted = name or DEFAULT_SIGNATURE
    signatures = dict(loaded.signatures)
    if wanted not in signatures:
        raise RuntimeLoadError(f"the SavedModel has no signature {wanted!r}; it has {sorted(signatures)}")
    return signatures[wanted]


def inputs_of(function: Any) -> Signature:
    _, kwargs = function.structured_input_signature
    return tensors_of(kwargs)


def outputs_of(function: Any) -> Signature:
    outputs = function.structured_outputs
    if not isinstance(outputs, dict):
        raise RuntimeLoadError("the signature's outputs are not named; export it returning a dict of tensors")
    return tensors_of(outputs)


def load_saved_model(path: Path) -> Any:
    try:
        return tf.saved_model.load(str(path))
    except Exception as exc:  # OSError for a missing saved_model.pb, others for a corrupt one
        raise RuntimeLoadError(f"cannot load SavedModel {str(path)!r}: {load_failure(exc)}") from None


class TensorFlowRuntime:
    """Calls one signature with the declared inputs; returns the declared outputs."""

    def __init__(self, loaded: Any, function: Any, spec: ModelSpec, device: str) -> None:
        self._loaded = loaded  # keeps the variables the signature reads alive
        self._function = function
        self._device = device
        self._inputs = [t.name for t in spec.inputs]
        self._outputs = [(o.name, np.dtype(DATATYPE_TO_NUMPY[o.datatype])) for o in spec.outputs]

    @property
    def device(self) -> str:
        return self._device

    def predict(self, inputs: Tensors) -> Tensors:
        place = "/CPU:0" if self._device == "cpu" else f"/GPU:{self._device.split(':')[1]}"
        with tf.device(place):
            results = self._function(**{name: tf.constant(inputs[name]) for name in self._inputs})
        return {name: np.asarray(results[name].numpy()).astype(dtype, copy=False) for name, dtype in self._outputs}


def choose_device(requested: str, gpus: int) -> str:
    """``auto``: the first GPU TensorFlow sees, else the CPU; ``cuda[:N]`` demands GPU N."""
    if requested == "cpu" or (requested == "auto" and gpus == 0):
        return "cpu"
    index = 0 if requested in ("auto", "cuda") else int(requested.split(":")[1])
    if index >= gpus:
        raise RuntimeLoadError(
            f"device {requested!r} asked for, but TensorFlow sees {gpus} GPU(s) (tensorflow-cpu sees none)"
        )
    return f"cuda:{index}"


def _set_threads(threads: int) -> None:
    """TensorFlow fixes its thread pools when it first runs anything; later, only a log line."""
    if tf.config.threading.get_intra_op_parallelism_threads() == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        logger.warning("runtime.threads %d is ignored: TensorFlow already started its thread pools", threads)


def load(spec: ModelSpec, model_dir: Path, device: str | None, max_batch_size: int = 32) -> TensorFlowRuntime:
    """``max_batch_size`` is not needed here: any batch size runs as it comes."""
    target = choose_device(device or spec.runtime.device, len(tf.config.list_physical_devices("GPU")))
    path = verified_artifact_path(model_dir, spec.artifact)
    if spec.runtime.threads:
        _set_threads(spec.runtime.threads)
    loaded = load_saved_model(path)
    function = signature_of(loaded, spec.runtime.signature)
    check_declared(list(spec.inputs), inputs_of(function), "input", "signature")
    check_declared(list(spec.outputs), outputs_of(function), "output", "signature")
    logger.info(
        "tensorflow model %s loaded on %s (signature %s)",
        spec.name,
        target,
        spec.runtime.signature or DEFAULT_SIGNATURE,
    )
    return TensorFlowRuntime(loaded, function, spec, target)
