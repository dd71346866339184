"""``python -m predictor.examples onnx|xgboost|lightgbm``: trained, packed, and right on their data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine

from predictor.examples.__main__ import main
from predictor.modeldir.spec import load_spec
from predictor.runtimes import load_runtime

# The tensorflow example runs in a child process: tests/unit/test_tensorflow_model.py.
DATA = {"onnx": load_iris, "xgboost": load_breast_cancer, "lightgbm": load_wine}
NAMES = {"onnx": "iris-onnx", "xgboost": "cancer", "lightgbm": "wine"}


@pytest.mark.parametrize("kind", list(DATA))
def test_example_serves_its_data_well(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([kind, "--out", str(tmp_path / kind)]) == 0
    spec = load_spec(tmp_path / kind)
    assert capsys.readouterr().out.endswith(f"wrote model {NAMES[kind]!r} ({kind}) to {tmp_path / kind}\n")
    data = DATA[kind]()
    runtime = load_runtime(spec, tmp_path / kind)
    outputs = runtime.predict({"features": data.data.astype(np.float32)})
    accuracy = float((outputs["label"] == data.target).mean())
    assert accuracy > 0.9, f"{kind} example labels only {accuracy:.0%} of its own training data right"
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    if kind in ("xgboost", "lightgbm"):  # the boosters keep their feature names, which become v1's object keys
        assert spec.preprocessing.feature_order is not None
        assert spec.preprocessing.feature_order[0] == ("mean_radius" if kind == "xgboost" else "alcohol")


def test_example_into_a_full_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "wine").mkdir()
    (tmp_path / "wine" / "other.txt").write_text("x")
    assert main(["lightgbm", "--out", str(tmp_path / "wine")]) == 2
    assert "already exists and is not an empty directory" in capsys.readouterr().err
