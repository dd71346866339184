"""Small models of each served format, trained here from data scikit-learn ships, with the
framework's own answers to compare the predictor's with.

Each ``Trained`` holds an artifact file, the rows to send, and ``reference(rows)``: what the
framework itself answers, keyed by the output names ``servekit-model pack`` declares.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine

from predictor.modelcli.main import main as servekit_model

Reference = Callable[[np.ndarray], dict[str, np.ndarray]]
ROWS = 300  # rows compared per model: "a few hundred"


@dataclass(frozen=True)
class Trained:
    kind: str
    artifact: Path
    input_name: str
    rows: np.ndarray  # FP32 rows drawn from the data set
    reference: Reference
    isolated: bool = False  # its framework must not be imported by the test process (TensorFlow)

    def pack(self, out: Path, name: str | None = None) -> Path:
        """The model directory ``servekit-model pack`` makes of the artifact."""
        argv = ["pack", str(self.artifact), "--name", name or self.kind, "--out", str(out)]
        if self.isolated:
            run_isolated(argv)
        else:
            assert servekit_model(argv) == 0, f"pack refused {self.artifact}"
        return out


def run_isolated(argv: list[str], expect: int = 0) -> subprocess.CompletedProcess[str]:
    """``servekit-model ARGV`` in a child process; its exit code must be ``expect``."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("servekit-model")), *argv],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    assert result.returncode == expect, f"servekit-model {argv}: exit {result.returncode}\n{result.stderr}"
    return result


def _rows(data: np.ndarray, seed: int = 7) -> np.ndarray:
    """ROWS rows drawn with replacement, as FP32: what a client sends."""
    picks = np.random.default_rng(seed).integers(0, len(data), size=ROWS)
    return np.ascontiguousarray(data[picks], dtype=np.float32)


def onnx_iris(root: Path) -> Trained:
    """A LogisticRegression on iris as an ONNX graph (probabilities as a tensor, no ZipMap)."""
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    x = data.data.astype(np.float32)
    model = LogisticRegression(max_iter=1000).fit(x, data.target)
    artifact = root / "iris.onnx"
    artifact.write_bytes(to_onnx(model, x[:1], options={"zipmap": False}).SerializeToString())
    session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])

    def reference(rows: np.ndarray) -> dict[str, np.ndarray]:
        label, probabilities = session.run(["label", "probabilities"], {"X": rows})
        return {"label": label, "probabilities": probabilities}

    return Trained("onnx", artifact, "X", _rows(x), reference)


def xgboost_cancer(root: Path, suffix: str = ".json") -> Trained:
    """A binary XGBClassifier on breast cancer (30 features), as JSON or UBJSON."""
    import xgboost

    data = load_breast_cancer()
    x = data.data.astype(np.float32)
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(x, data.target)
    artifact = root / f"cancer{suffix}"
    model.save_model(artifact)

    def reference(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {"label": model.predict(rows), "probabilities": model.predict_proba(rows)}

    return Trained("xgboost", artifact, "features", _rows(x), reference)


def lightgbm_wine(root: Path) -> Trained:
    """A three-class LGBMClassifier on wine (13 features), as a text model."""
    import lightgbm

    data = load_wine()
    x = data.data.astype(np.float32)
    model = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, n_jobs=1, verbose=-1).fit(x, data.target)
    artifact = root / "wine.txt"
    model.booster_.save_model(artifact)

    def reference(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {"label": model.predict(rows), "probabilities": model.predict_proba(rows)}

    return Trained("lightgbm", artifact, "features", _rows(x), reference)


def xgboost_diabetes(root: Path) -> Trained:
    """An XGBRegressor on diabetes (10 features), as UBJSON: one raw prediction per row."""
    import xgboost

    data = load_diabetes()
    x = data.data.astype(np.float32)
    model = xgboost.XGBRegressor(n_estimators=20, max_depth=3, n_jobs=1).fit(x, data.target)
    artifact = root / "diabetes.ubj"
    model.save_model(artifact)
    return Trained("xgboost", artifact, "features", _rows(x), lambda rows: {"prediction": model.predict(rows)})


def lightgbm_diabetes(root: Path) -> Trained:
    """An LGBMRegressor on diabetes (10 features), as a text model."""
    import lightgbm

    data = load_diabetes()
    x = data.data.astype(np.float32)
    model = lightgbm.LGBMRegressor(n_estimators=20, num_leaves=8, n_jobs=1, verbose=-1).fit(x, data.target)
    artifact = root / "diabetes.txt"
    model.booster_.save_model(artifact)
    return Trained("lightgbm", artifact, "features", _rows(x), lambda rows: {"prediction": model.predict(rows)})


# TensorFlow and torch's CUDA build crash one process that loads both (a segmentation fault in
# triton's import after TensorFlow's), so nothing in the test process imports TensorFlow: the
# SavedModel is built, and TensorFlow's own answers computed, in a child process.
_TF_BUILD = """
import sys
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

out, rows_file, answers_file = sys.argv[1:]
data = load_iris()
fitted = LogisticRegression(max_iter=1000).fit(data.data.astype(np.float32), data.target)


class Classifier(tf.Module):
    def __init__(self):
        super().__init__()
        self.weights = tf.Variable(fitted.coef_.T.astype(np.float32))
        self.bias = tf.Variable(fitted.intercept_.astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def serve(self, features):
        logits = tf.matmul(features, self.weights) + self.bias
        return {"label": tf.argmax(logits, axis=1), "probabilities": tf.nn.softmax(logits)}

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def logits(self, features):
        return {"logits": tf.matmul(features, self.weights) + self.bias}


module = Classifier()
tf.saved_model.save(module, out, signatures={"serving_default": module.serve, "logits": module.logits})
serve = tf.saved_model.load(out).signatures["serving_default"]
answers = serve(features=tf.constant(np.load(rows_file)))
np.savez(answers_file, **{name: tensor.numpy() for name, tensor in answers.items()})
"""


HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None  # found, not imported
NO_TENSORFLOW = "tensorflow is not installed (servekit[tensorflow])"


def tensorflow_iris(root: Path) -> Trained:
    """A LogisticRegression's weights on iris as a TensorFlow SavedModel: signature
    ``serving_default`` (features -> label, probabilities) and ``logits`` (features -> logits).
    ``reference`` answers for rows among ``rows``, from TensorFlow's own run in the child."""
    rows = _rows(load_iris().data)
    np.save(root / "tf-rows.npy", rows)
    artifact = root / "iris_savedmodel"
    subprocess.run(
        [sys.executable, "-c", _TF_BUILD, str(artifact), str(root / "tf-rows.npy"), str(root / "tf-answers.npz")],
        check=True, capture_output=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    answers = dict(np.load(root / "tf-answers.npz"))
    index = {row.tobytes(): i for i, row in enumerate(rows)}

    def reference(some: np.ndarray) -> dict[str, np.ndarray]:
        picks = [index[row.tobytes()] for row in np.asarray(some, dtype=np.float32)]
        return {name: values[picks] for name, values in answers.items()}

    return Trained("tensorflow", artifact, "features", rows, reference, isolated=True)


CLASSIFIERS: dict[str, Callable[[Path], Trained]] = {
    "onnx": onnx_iris,
    "xgboost": xgboost_cancer,
    "lightgbm": lightgbm_wine,
}
if HAS_TENSORFLOW:
    CLASSIFIERS["tensorflow"] = tensorflow_iris
