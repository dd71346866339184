"""Small models of each served format, trained here from data scikit-learn ships, with the
framework's own answers to compare the predictor's with.

Each ``Trained`` holds an artifact file, the rows to send, and ``reference(rows)``: what the
framework itself answers, keyed by the output names ``servekit-model pack`` declares.
"""

from __future__ import annotations

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

    def pack(self, out: Path, name: str | None = None) -> Path:
        """The model directory ``servekit-model pack`` makes of the artifact."""
        code = servekit_model(["pack", str(self.artifact), "--name", name or self.kind, "--out", str(out)])
        assert code == 0, f"pack refused {self.artifact}"
        return out


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


CLASSIFIERS: dict[str, Callable[[Path], Trained]] = {
    "onnx": onnx_iris,
    "xgboost": xgboost_cancer,
    "lightgbm": lightgbm_wine,
}
