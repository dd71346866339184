"""A LogisticRegression on scikit-learn's bundled iris data set, as a servable model directory."""

from __future__ import annotations

from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from predictor.modeldir.artifacts import sha256_of
from predictor.modeldir.spec import ModelSpec, dump_spec

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def build(out: Path, name: str = "iris") -> ModelSpec:
    iris = load_iris()
    model = LogisticRegression(max_iter=1000)
    model.fit(iris.data, iris.target)
    out.mkdir(parents=True, exist_ok=True)
    artifact = out / "model.joblib"
    joblib.dump(model, artifact)
    spec = ModelSpec.model_validate(
        {
            "name": name,
            "framework": "sklearn",
            "artifact": {"path": artifact.name, "sha256": sha256_of(artifact), "format": "joblib"},
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1], "source": "label"},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3], "source": "probabilities"},
            ],
            "labels": [str(n) for n in iris.target_names],
            "preprocessing": {"feature_order": FEATURES},
        }
    )
    dump_spec(spec, out)
    return spec
