"""scikit-learn runtime: joblib or pickle artifacts, unpickled only after their hash matches."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn

from predictor.modeldir.artifacts import verified_artifact_path
from predictor.modeldir.spec import DATATYPE_TO_NUMPY, ModelSpec
from predictor.runtimes import RuntimeLoadError, Tensors

# Which estimator method computes each output source.
_METHODS = {"label": "predict", "probabilities": "predict_proba", "raw": "predict"}


class SklearnRuntime:
    """Runs a fitted estimator (or Pipeline) on the CPU."""

    def __init__(self, estimator: Any, spec: ModelSpec) -> None:
        self._estimator = estimator
        self._input = spec.inputs[0].name
        self._outputs = [(o.name, _METHODS[o.source], np.dtype(DATATYPE_TO_NUMPY[o.datatype])) for o in spec.outputs]

    @property
    def device(self) -> str:
        return "cpu"

    def predict(self, inputs: Tensors) -> Tensors:
        features = inputs[self._input]
        results: dict[str, np.ndarray] = {}
        computed: dict[str, np.ndarray] = {}
        # Inputs were already checked for NaN/inf, so skip sklearn's own finiteness scan.
        with sklearn.config_context(assume_finite=True):
            for name, method, dtype in self._outputs:
                if method not in computed:
                    computed[method] = getattr(self._estimator, method)(features)
                results[name] = np.asarray(computed[method]).astype(dtype, copy=False)
        return results


def load(spec: ModelSpec, model_dir: Path, device: str | None, max_batch_size: int = 32) -> SklearnRuntime:
    """``max_batch_size`` is not needed here: any batch size runs as it comes."""
    requested = device or spec.runtime.device
    if requested not in ("auto", "cpu"):
        raise RuntimeLoadError(f"scikit-learn models run on the CPU only, got device {requested!r}")
    if len(spec.inputs) != 1:
        raise RuntimeLoadError(f"scikit-learn models take one input tensor, the manifest declares {len(spec.inputs)}")
    path = verified_artifact_path(model_dir, spec.artifact)
    estimator = _unpickle(path, spec.artifact.format or "joblib")
    for output in spec.outputs:
        method = _METHODS[output.source]
        if not callable(getattr(estimator, method, None)):
            raise RuntimeLoadError(
                f"output {output.name!r} needs {type(estimator).__name__}.{method}(), which this estimator lacks"
            )
    return SklearnRuntime(estimator, spec)


def _unpickle(path: Path, fmt: str) -> Any:
    try:
        if fmt == "pickle":
            with path.open("rb") as stream:
                return pickle.load(stream)
        if fmt == "joblib":
            return joblib.load(path)
    except Exception as exc:
        raise RuntimeLoadError(f"cannot load {fmt} artifact {str(path)!r}: {type(exc).__name__}: {exc}") from None
    raise RuntimeLoadError(f"scikit-learn artifacts are joblib or pickle files, the manifest says {fmt!r}")
