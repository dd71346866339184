"""Example models in the formats beside scikit-learn and torch, each trained on data scikit-learn
ships and turned into a model directory by ``servekit-model pack``, as a user would.

- ``onnx``: a LogisticRegression on iris, converted with skl2onnx (model ``iris-onnx``);
- ``xgboost``: a binary XGBClassifier on breast cancer, saved as UBJSON (model ``cancer``);
- ``lightgbm``: a three-class LGBMClassifier on wine, saved as text (model ``wine``);
- ``tensorflow``: a softmax regression on iris as a SavedModel, trained with Keras-free TensorFlow
  (model ``iris-tf``; signatures ``serving_default`` and ``logits``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_iris, load_wine

from predictor.modelcli.pack import pack
from predictor.modeldir.spec import ModelSpec

DEFAULT_NAMES = {"onnx": "iris-onnx", "xgboost": "cancer", "lightgbm": "wine", "tensorflow": "iris-tf"}
# What each example needs beyond servekit's own dependencies.
EXTRAS = {
    "onnx": "servekit[onnx,examples]",
    "xgboost": "servekit[xgboost]",
    "lightgbm": "servekit[lightgbm]",
    "tensorflow": "servekit[tensorflow]",
}


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


def _tensorflow(folder: Path) -> Path:
    import tensorflow as tf

    iris = load_iris()
    x = iris.data.astype(np.float32)
    x = (x - x.mean(axis=0)) / x.std(axis=0)  # standardised in the graph below, so clients send raw cm
    mean, std = iris.data.mean(axis=0).astype(np.float32), iris.data.std(axis=0).astype(np.float32)
    weights = tf.Variable(tf.zeros([4, 3]))
    bias = tf.Variable(tf.zeros([3]))
    optimizer = tf.optimizers.SGD(0.5)
    labels = tf.one_hot(iris.target, 3)
    for _ in range(300):  # plain gradient descent on the cross-entropy: seconds, deterministic
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels, tf.matmul(x, weights) + bias))
        optimizer.apply_gradients(zip(tape.gradient(loss, [weights, bias]), [weights, bias], strict=True))

    class Classifier(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.weights, self.bias = weights, bias
            self.mean, self.std = tf.constant(mean), tf.constant(std)

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])  # type: ignore[untyped-decorator]
        def logits(self, features: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"logits": tf.matmul((features - self.mean) / self.std, self.weights) + self.bias}

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])  # type: ignore[untyped-decorator]
        def serve(self, features: tf.Tensor) -> dict[str, tf.Tensor]:
            logits = self.logits(features)["logits"]
            return {"label": tf.argmax(logits, axis=1), "probabilities": tf.nn.softmax(logits)}

    module = Classifier()
    path = folder / "iris_savedmodel"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve, "logits": module.logits})
    return path


TRAINERS: dict[str, Callable[[Path], Path]] = {
    "onnx": _onnx,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "tensorflow": _tensorflow,
}


def build(kind: str, out: Path, name: str | None = None) -> ModelSpec:
    """Train the ``kind`` example, save it in its framework's own format and pack it into ``out``."""
    with tempfile.TemporaryDirectory() as folder:
        artifact = TRAINERS[kind](Path(folder))
        spec, _ = pack(artifact, name or DEFAULT_NAMES[kind], out)
    return spec
