"""Example models in the formats beside scikit-learn and torch, each trained on data scikit-learn
ships and turned into a model directory by ``servekit-model pack``, as a user would.

- ``onnx``: a LogisticRegression on iris, converted with skl2onnx (model ``iris-onnx``);
- ``xgboost``: a binary XGBClassifier on breast cancer, saved as UBJSON (model ``cancer``);
- ``lightgbm``: a three-class LGBMClassifier on wine, saved as text (model ``wine``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_iris, load_wine

from predictor.modelcli.pack import pack
from predictor.modeldir.spec import ModelSpec

DEFAULT_NAMES = {"onnx": "iris-onnx", "xgboost": "cancer", "lightgbm": "wine"}
# What each example needs beyond servekit's own dependencies.
EXTRAS = {"onnx": "servekit[onnx,examples]", "xgboost": "servekit[xgboost]", "lightgbm": "servekit[lightgbm]"}


def _onnx(folder: Path) -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    x = iris.data.astype(np.float32)
    model = LogisticRegression(max_iter=1000).fit(x, iris.target)
    # [None, 4]: a free batch axis, so the server can merge requests. zipmap off: probabilities
    # as a tensor, not a list of {class: p} maps.
    graph = to_onnx(model, initial_types=[("features", FloatTensorType([None, 4]))], options={"zipmap": False})
    path = folder / "iris.onnx"
    path.write_bytes(graph.SerializeToString())
    return path


def _names(raw: list[str]) -> list[str]:
    """Feature names as v1 object keys: 'mean radius' becomes 'mean_radius'."""
    return [n.replace(" ", "_").replace("/", "_").replace("(", "").replace(")", "") for n in raw]


def _xgboost(folder: Path) -> Path:
    import xgboost

    data = load_breast_cancer()
    model = xgboost.XGBClassifier(n_estimators=50, max_depth=3, n_jobs=1)
    model.fit(data.data.astype(np.float32), data.target)
    booster = model.get_booster()
    booster.feature_names = _names(list(data.feature_names))  # kept in the file; pack reads them back
    path = folder / "cancer.ubj"
    booster.save_model(path)
    return path


def _lightgbm(folder: Path) -> Path:
    import lightgbm

    data = load_wine()
    model = lightgbm.LGBMClassifier(n_estimators=50, num_leaves=8, n_jobs=1, verbose=-1)
    model.fit(data.data.astype(np.float32), data.target, feature_name=_names(list(data.feature_names)))
    path = folder / "wine.txt"
    model.booster_.save_model(path)
    return path


TRAINERS: dict[str, Callable[[Path], Path]] = {"onnx": _onnx, "xgboost": _xgboost, "lightgbm": _lightgbm}


def build(kind: str, out: Path, name: str | None = None) -> ModelSpec:
    """Train the ``kind`` example, save it in its framework's own format and pack it into ``out``."""
    with tempfile.TemporaryDirectory() as folder:
        artifact = TRAINERS[kind](Path(folder))
        spec, _ = pack(artifact, name or DEFAULT_NAMES[kind], out)
    return spec
