"""``profile``: training data in, a hashed profile named in the manifest out; clear errors otherwise."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from predictor.examples import sklearn_iris
from predictor.modelcli.main import main
from predictor.modeldir.artifacts import ArtifactError
from predictor.modeldir.spec import load_spec
from predictor.monitoring.monitor import load_profile
from predictor.monitoring.training_data import read_rows
from tests.support.server import REPO


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "iris"
    sklearn_iris.build(path)
    return path


def fresh(iris_model: Path, tmp_path: Path) -> Path:
    target = tmp_path / "iris"
    target.mkdir()
    for item in iris_model.iterdir():
        (target / item.name).write_bytes(item.read_bytes())
    return target


def test_a_csv_with_named_columns_is_read_in_feature_order_and_the_profile_is_named(
    iris_model: Path, tmp_path: Path
) -> None:
    model = fresh(iris_model, tmp_path)
    rng = np.random.default_rng(0)
    data = tmp_path / "train.csv"
    # Columns out of order, plus the target: the manifest's feature_order picks and orders them.
    lines = ["species,petal_width,petal_length,sepal_width,sepal_length"]
    lines += [f"0,{rng.normal(1)},{rng.normal(4)},{rng.normal(3)},{rng.normal(100)}" for _ in range(300)]
    data.write_text("\n".join(lines) + "\n")
    assert main(["profile", str(model), "--data", str(data)]) == 0
    spec = load_spec(model)
    assert spec.profile is not None and spec.profile.path == "profile.json"
    profile = load_profile(spec, model)
    assert profile is not None and profile.rows == 300
    sepal_length = profile.inputs["features"].features[0]
    assert sepal_length.mean == pytest.approx(100, abs=0.2)


def test_a_changed_profile_stops_the_model_from_loading(iris_model: Path, tmp_path: Path) -> None:
    model = fresh(iris_model, tmp_path)
    data = tmp_path / "train.npy"
    np.save(data, np.random.default_rng(1).normal(size=(100, 4)))
    assert main(["profile", str(model), "--data", str(data)]) == 0
    document = json.loads((model / "profile.json").read_text())
    document["rows"] = 1
    (model / "profile.json").write_text(json.dumps(document))
    with pytest.raises(ArtifactError, match=r"profile .* has sha256 .* but the manifest expects"):
        load_profile(load_spec(model), model)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("narrow.npy", np.zeros((10, 3)), "has 3 features per row, input 'features' .* has 4"),
        ("flat.npy", np.zeros(10), r"expected rows of features, got shape \[10\]"),
        ("lacking.csv", "sepal_length,sepal_width\n1,2\n", r"lacks columns \['petal_length', 'petal_width'\]"),
        ("data.txt", "1,2,3,4\n", "expected a file ending in .npy, .csv, .parquet"),
    ],
)
def test_bad_training_data_is_refused_with_what_was_expected(
    iris_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: object, message: str
) -> None:
    model = fresh(iris_model, tmp_path)
    data = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(data, content)
    else:
        data.write_text(str(content))
    assert main(["profile", str(model), "--data", str(data)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("servekit-model profile: error: "), error
    assert re.search(message, error), error
    assert load_spec(model).profile is None


def test_parquet_needs_pyarrow_and_says_so_or_is_read(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    try:
        import pyarrow as pa  # type: ignore[import-not-found,unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        path.write_bytes(b"PAR1")
        with pytest.raises(ValueError, match=r"reading \.parquet needs pyarrow \(pip install pyarrow\)"):
            read_rows(path, None)
        return
    pq.write_table(pa.table({"b": [1.0, 2.0], "a": [3.0, 4.0]}), path)
    assert read_rows(path, ["a", "b"]).tolist() == [[3.0, 1.0], [4.0, 2.0]]


def test_servekit_model_profile_has_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "predictor.modelcli.main", "profile", "--help"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--data FILE" in result.stdout and "servekit_input_drift" in result.stdout
