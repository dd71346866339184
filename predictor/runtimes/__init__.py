"""Framework runtimes: load one artifact, run one batch.

A runtime knows nothing of HTTP or batching. Adding a framework (ONNX, XGBoost, ...) is one
module with a ``load(spec, model_dir, device, max_batch_size)`` function and one line in ``_LOADERS``; model.py
does not change.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

import numpy as np

from predictor.modeldir.spec import ModelSpec

Tensors = dict[str, np.ndarray]


class RuntimeLoadError(RuntimeError):
    """The artifact could not be turned into a working model (wrong format, missing method, ...)."""


def load_failure(exc: BaseException) -> str:
    """A framework's load error as one line: native libraries (XGBoost, onnxruntime) append a
    C++ stack trace and multi-line context, which would bury the reason in a start-up message."""
    text = str(exc).split("Stack trace:")[0]
    return f"{type(exc).__name__}: {' '.join(text.split())}"


class ModelRuntime(Protocol):
    """A loaded model that maps a batch of inputs to the declared outputs."""

    @property
    def device(self) -> str:
        """Where the model runs, e.g. ``cpu`` or ``cuda:0``."""
        ...

    def predict(self, inputs: Tensors) -> Tensors:
        """Outputs keyed by declared output name; every array has the batch's rows on axis 0."""
        ...


class RuntimeLoader(Protocol):
    def __call__(self, spec: ModelSpec, model_dir: Path, device: str | None, max_batch_size: int) -> ModelRuntime: ...


# framework -> module; imported only when used so a scikit-learn server never pays for importing torch.
_LOADERS: dict[str, str] = {
    "sklearn": "predictor.runtimes.sklearn_runtime",
    "torch": "predictor.runtimes.torch_runtime",
    "onnx": "predictor.runtimes.onnx_runtime",
    "xgboost": "predictor.runtimes.xgboost_runtime",
    "lightgbm": "predictor.runtimes.lightgbm_runtime",
    "tensorflow": "predictor.runtimes.tensorflow_runtime",
}
# What to install when a runtime's packages are missing: each framework but scikit-learn is an
# extra of servekit's; scikit-learn and joblib are among its own dependencies (pyproject.toml).
_INSTALL_HINTS: dict[str, str] = {
    "torch": "install servekit[torch]",
    "onnx": "install servekit[onnx] (or onnxruntime-gpu for the CUDA execution provider)",
    "xgboost": "install servekit[xgboost]",
    "lightgbm": "install servekit[lightgbm]",
    "tensorflow": "install servekit[tensorflow]",
}
_BASE_INSTALL_HINT = "reinstall servekit: scikit-learn and joblib are among its own dependencies"


def install_hint(framework: str) -> str:
    """What to install for a framework whose packages are missing."""
    return _INSTALL_HINTS.get(framework, _BASE_INSTALL_HINT)


def load_runtime(
    spec: ModelSpec, model_dir: str | Path, device: str | None = None, *, max_batch_size: int = 32
) -> ModelRuntime:
    """Load the model directory's artifact with the runtime for its framework.

    ``device`` overrides the manifest's ``runtime.device`` (the ``--device`` flag);
    ``max_batch_size`` is the most rows the batcher merges (CUDA graphs are captured up to it).
    """
    module_name = _LOADERS.get(spec.framework)
    if module_name is None:
        raise RuntimeLoadError(f"no runtime for framework {spec.framework!r}; known: {sorted(_LOADERS)}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RuntimeLoadError(
            f"the {spec.framework} runtime needs a package that is not installed ({exc.name}); "
            f"{install_hint(spec.framework)}"
        ) from None
    loader: RuntimeLoader = module.load
    return loader(spec, Path(model_dir), device, max_batch_size)
