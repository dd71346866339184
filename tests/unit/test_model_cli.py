"""``servekit-model``: pack writes a directory the server loads, refuses what it cannot serve
(saying why, leaving nothing behind), and check compares a directory's answers."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression

from predictor import runtimes
from predictor.modelcli import main as cli
from predictor.modeldir.artifacts import sha256_of
from predictor.modeldir.spec import load_spec
from tests.support import formats


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, formats.Trained]:
    root = tmp_path_factory.mktemp("artifacts")
    return {
        "onnx": formats.onnx_iris(root),
        "xgboost": formats.xgboost_cancer(root),
        "lightgbm": formats.lightgbm_wine(root),
    }


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- help and the subcommand registry ------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["pack"], ["check"]], ids=["servekit-model", "pack", "check"])
def test_help_everywhere(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([*argv, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: servekit-model")
    for word in {
        "servekit-model": ["pack", "check"],
        "pack": ["--name", "--out", "sha256"],
        "check": ["--expect", "--atol"],
    }[argv[0] if argv else "servekit-model"]:
        assert word in out


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("servekit-model")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert all(command in result.stdout for command in ("pack", "check", "profile")), result.stdout


def test_a_subcommand_is_one_module_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = types.ModuleType("tests_extra_subcommand")

    def add_parser(subparsers: Any) -> None:
        parser = subparsers.add_parser("inspect", help="a subcommand from another module")
        parser.add_argument("model_dir")
        parser.set_defaults(run=lambda args: print(f"inspected {args.model_dir}") or 0)

    extra.add_parser = add_parser  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, extra.__name__, extra)
    monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS, extra.__name__])
    assert run(capsys, "inspect", "models/iris") == (0, "inspected models/iris\n", "")


# ---- pack ------------------------------------------------------------------------------------------


def test_pack_writes_a_manifest_read_from_the_model(
    models: dict[str, formats.Trained], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "pack", str(models["xgboost"].artifact), "--name", "cancer", "--out", str(tmp_path / "m")
    )
    assert (code, err) == (0, "")
    assert "XGBoost classifier, 2 classes: objective binary:logistic, 30 features" in out
    spec = load_spec(tmp_path / "m")
    assert (spec.name, spec.framework, spec.artifact.format, spec.artifact.path) == (
        "cancer", "xgboost", "xgboost_json", "model.json",
    )  # fmt: skip
    assert spec.artifact.sha256 == sha256_of(models["xgboost"].artifact) == sha256_of(tmp_path / "m" / "model.json")
    assert [(t.name, t.datatype, t.shape) for t in spec.inputs] == [("features", "FP32", [-1, 30])]
    assert [(o.name, o.datatype, o.shape, o.source) for o in spec.outputs] == [
        ("label", "INT64", [-1], "label"),
        ("probabilities", "FP32", [-1, 2], "probabilities"),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging directory left


def test_pack_learns_a_regressors_width_from_the_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, y = load_diabetes(return_X_y=True)
    joblib.dump(LinearRegression().fit(x, np.stack([y, -y], axis=1)), tmp_path / "two.joblib")
    assert run(capsys, "pack", str(tmp_path / "two.joblib"), "--name", "two", "--out", str(tmp_path / "m"))[0] == 0
    assert [(o.name, o.datatype, o.shape) for o in load_spec(tmp_path / "m").outputs] == [
        ("prediction", "FP64", [-1, 2])
    ]


def _onnx_zipmap(path: Path, fixed_batch: bool = False) -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    x = np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32)
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    if fixed_batch:
        graph = to_onnx(model, initial_types=[("X", FloatTensorType([1, 3]))], options={"zipmap": False})
    else:
        graph = to_onnx(model, x[:1])
    path.write_bytes(graph.SerializeToString())
    return path


def _refusals(tmp: Path) -> list[tuple[str, Path, list[str], str]]:
    """(id, artifact, extra args, expected message part); each artifact written here."""
    (tmp / "empty.onnx").write_bytes(b"")
    (tmp / "weights.bin").write_bytes(b"\x00\x01\x02")
    (tmp / "net.pt2").write_bytes(b"PK\x03\x04rest")
    (tmp / "config.json").write_text('{"layers": [1, 2]}')
    (tmp / "broken.json").write_text('{"learner": {"gradient_booster": 12')
    (tmp / "notes.txt").write_text("hello\n")
    (tmp / "cut.txt").write_text("tree\nversion=v4\nnum_class=1\n")
    (tmp / "garbage.onnx").write_bytes(b"\x08\x07 not a graph")
    joblib.dump(LogisticRegression(), tmp / "unfitted.joblib")
    joblib.dump({"weights": [1, 2]}, tmp / "dict.pkl")
    (tmp / "full").mkdir()
    (tmp / "full" / "keep.txt").write_text("mine")
    ok = tmp / "ok.joblib"
    joblib.dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), ok)
    return [
        ("missing file", tmp / "nope.onnx", [], "no such file: "),
        ("a directory", tmp / "full", [], "is a directory without saved_model.pb; pack takes one model file"),
        ("empty file", tmp / "empty.onnx", [], "empty.onnx is empty: there is no model in it"),
        ("unknown format", tmp / "weights.bin", [], "cannot tell what kind of model weights.bin is"),
        ("torch program", tmp / "net.pt2", [], "pack cannot read its input shapes from the file"),
        ("json, not xgboost", tmp / "config.json", [], "config.json is a JSON object but not an XGBoost model"),
        ("corrupt xgboost", tmp / "broken.json", [], "broken.json: cannot load xgboost_json artifact"),
        ("text, not lightgbm", tmp / "notes.txt", [], "notes.txt is not a LightGBM text model"),
        ("truncated lightgbm", tmp / "cut.txt", [], "cut.txt: cannot load LightGBM artifact"),
        ("not an onnx graph", tmp / "garbage.onnx", [], "garbage.onnx is not an ONNX graph onnxruntime can load"),
        ("onnx zipmap", _onnx_zipmap(tmp / "zipmap.onnx"), [], "options={'zipmap': False}"),
        (
            "onnx fixed batch",
            _onnx_zipmap(tmp / "fixed.onnx", True),
            [],
            "graph input 'X' has a fixed first dimension 1",
        ),
        ("unfitted estimator", tmp / "unfitted.joblib", [], "holds a LogisticRegression, not a fitted scikit-learn"),
        ("not an estimator", tmp / "dict.pkl", [], "holds a dict, not a fitted scikit-learn estimator"),
        ("out not empty", ok, ["--out", str(tmp / "full")], "already exists and is not an empty directory"),
        ("bad name", ok, ["--name", "My Model"], "name: Value error, name must be lowercase"),
    ]


def test_each_refusal_says_why_and_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    failures = []
    for case, artifact, extra, expected in _refusals(inputs):
        outdir = tmp_path / "out" / case.replace(" ", "-")
        args = {"--name": "m", "--out": str(outdir)}
        args.update(dict(zip(extra[::2], extra[1::2], strict=True)))
        code, _, err = run(capsys, "pack", str(artifact), *[x for pair in args.items() for x in pair])
        if code != 2 or not err.startswith("servekit-model: error: ") or expected not in err or err.count("\n") != 1:
            failures.append(f"{case}: exit {code}, stderr {err!r}, expected {expected!r}")
        if case != "out not empty" and (tmp_path / "out").exists() and any((tmp_path / "out").iterdir()):
            failures.append(f"{case}: left {sorted(p.name for p in (tmp_path / 'out').iterdir())}")
    assert not failures, "\n".join(failures)
    assert sorted(p.name for p in (inputs / "full").iterdir()) == ["keep.txt"]


# ---- check -----------------------------------------------------------------------------------------


@pytest.fixture
def packed_lightgbm(models: dict[str, formats.Trained], tmp_path: Path) -> tuple[formats.Trained, Path]:
    return models["lightgbm"], models["lightgbm"].pack(tmp_path / "wine", name="wine")


def _v2_files(tmp_path: Path, model: formats.Trained, probabilities: np.ndarray) -> tuple[Path, Path]:
    rows = model.rows[:50]
    request = {
        "inputs": [
            {"name": "features", "datatype": "FP32", "shape": list(rows.shape), "data": rows.reshape(-1).tolist()}
        ]
    }
    response = {
        "model_name": "wine",
        "outputs": [
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": list(probabilities.shape),
                "data": probabilities.reshape(-1).tolist(),
            }
        ],
    }
    (tmp_path / "request.json").write_text(json.dumps(request))
    (tmp_path / "response.json").write_text(json.dumps(response))
    return tmp_path / "request.json", tmp_path / "response.json"


def test_check_passes_on_the_frameworks_own_answers(
    packed_lightgbm: tuple[formats.Trained, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, model_dir = packed_lightgbm
    request, response = _v2_files(tmp_path, model, model.reference(model.rows[:50])["probabilities"])
    code, out, _ = run(capsys, "check", str(model_dir), "--inputs", str(request), "--expect", str(response))
    assert code == 0, out
    assert "model 'wine' (lightgbm) loaded on cpu; 50 rows ran" in out
    assert out.rstrip().endswith("1 of 1 outputs match within 1e-05")


def test_check_fails_naming_the_worst_difference(
    packed_lightgbm: tuple[formats.Trained, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, model_dir = packed_lightgbm
    expected = model.reference(model.rows[:50])["probabilities"].copy()
    expected[7, 2] += 0.01
    request, response = _v2_files(tmp_path, model, expected)
    code, out, _ = run(capsys, "check", str(model_dir), "--inputs", str(request), "--expect", str(response))
    assert code == 1
    assert "differs: probabilities: largest difference 0.01 at [7, 2]" in out
    assert "0 of 1 outputs match within 1e-05" in out


def test_check_without_inputs_runs_samples(
    packed_lightgbm: tuple[formats.Trained, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "check", str(packed_lightgbm[1]))
    assert code == 0
    assert "4 rows ran" in out and "probabilities: FP32 [4, 3]" in out


def test_check_refusals(
    packed_lightgbm: tuple[formats.Trained, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, model_dir = packed_lightgbm
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"features": [[1.0, 2.0]]}))
    code, _, err = run(capsys, "check", str(model_dir), "--inputs", str(bad))
    assert code == 2 and "dimension 1 is 2, expected 13" in err, err
    code, _, err = run(capsys, "check", str(model_dir), "--expect", str(bad))
    assert (code, err) == (
        2,
        "servekit-model: error: --expect needs --inputs: the expected answers are for given inputs\n",
    )
    (model_dir / "model.txt").write_text((model_dir / "model.txt").read_text() + "\n")
    code, _, err = run(capsys, "check", str(model_dir))
    assert code == 2 and "but the manifest expects" in err and "refusing to load it" in err


def test_args_namespace_carries_run() -> None:
    args = cli.build_parser().parse_args(["check", "dir"])
    assert isinstance(args, argparse.Namespace) and callable(args.run)


def test_pack_without_the_framework_names_the_extra(
    models: dict[str, formats.Trained],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)  # import xgboost now fails as where it is not installed
    monkeypatch.delitem(sys.modules, "predictor.runtimes.xgboost_runtime", raising=False)
    monkeypatch.delattr(runtimes, "xgboost_runtime", raising=False)  # `from predictor.runtimes import` finds it there
    code, _, err = run(capsys, "pack", str(models["xgboost"].artifact), "--name", "m", "--out", str(tmp_path / "m"))
    assert code == 2
    assert err == (
        "servekit-model: error: cancer.json is a xgboost model, but xgboost is not installed; "
        "install servekit[xgboost]\n"
    )
    assert not (tmp_path / "m").exists()


def test_signature_is_for_saved_models_only(
    models: dict[str, formats.Trained], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "pack", str(models["onnx"].artifact), "--name", "m", "--out", str(tmp_path / "m"), "--signature", "s"
    )
    assert code == 2
    assert "--signature is for TensorFlow SavedModels; " in err and "is a onnx model" in err


def test_a_directorys_sha256_is_what_the_shell_pipeline_prints(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "variables").mkdir(parents=True)
    (tree / "saved_model.pb").write_bytes(b"graph")
    (tree / "variables" / "variables.index").write_bytes(b"index")
    (tree / "variables.txt").write_bytes(b"sorts after variables/ bytewise")
    (tree / "assets").mkdir()
    shell = subprocess.run(
        "find . -type f | LC_ALL=C sort | sed 's|^\\./||' | xargs sha256sum | sha256sum",
        shell=True, cwd=tree, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert sha256_of(tree) == shell.stdout.split()[0]
