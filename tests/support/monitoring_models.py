"""Model directories for the monitoring tests: a classifier and a regressor on Gaussian features, profiled."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression

from predictor.modeldir.artifacts import sha256_of
from predictor.modeldir.spec import ModelSpec, dump_spec
from predictor.monitoring.profile_command import write_profile

MEANS = np.array([0.0, 5.0, 10.0, -3.0])
STDS = np.array([1.0, 2.0, 0.5, 3.0])
LABELS = ["low", "mid", "high"]


def gaussian_rows(rows: int, seed: int) -> np.ndarray:
    """Rows from the training distribution, as FP32 (what a client sends)."""
    return np.random.default_rng(seed).normal(MEANS, STDS, size=(rows, MEANS.size)).astype(np.float32)


def _target(rows: np.ndarray) -> np.ndarray:
    score = (rows - MEANS) / STDS @ np.array([1.0, 0.5, 0.0, -0.5])
    return np.digitize(score, [-0.5, 0.5])  # three classes of similar size


def build(path: Path, kind: str) -> Path:
    """``kind`` "classifier" (label + probabilities, manifest labels) or "regressor" (one FP64 value)."""
    path.mkdir(parents=True, exist_ok=True)
    train = gaussian_rows(5000, seed=0)
    if kind == "classifier":
        estimator: object = LogisticRegression(max_iter=500).fit(train, _target(train))
        outputs = [
            {"name": "label", "datatype": "INT64", "shape": [-1], "source": "label"},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3], "source": "probabilities"},
        ]
    else:
        estimator = LinearRegression().fit(train, train @ np.array([1.0, -2.0, 0.5, 3.0]))
        outputs = [{"name": "y", "datatype": "FP64", "shape": [-1], "source": "raw"}]
    joblib.dump(estimator, path / "model.joblib")
    spec = ModelSpec.model_validate(
        {
            "name": f"gauss-{kind}",
            "framework": "sklearn",
            "artifact": {"path": "model.joblib", "sha256": sha256_of(path / "model.joblib")},
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": outputs,
            **({"labels": LABELS} if kind == "classifier" else {}),
        }
    )
    dump_spec(spec, path)
    np.save(path.parent / f"{path.name}-train.npy", train)
    write_profile(path, path.parent / f"{path.name}-train.npy", None, bins=10)
    return path
