"""The ONNX, XGBoost and LightGBM runtimes on models trained here: the same answers as the
framework itself, and a wrong, tampered or mismatched artifact never serves."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from predictor.modeldir.artifacts import ArtifactError
from predictor.modeldir.preprocessing import apply_transforms
from predictor.modeldir.spec import MANIFEST_NAME, load_spec
from predictor.runtimes import RuntimeLoadError, load_runtime
from tests.support import formats
from tests.support.formats import Trained

BUILDERS = {
    "onnx": formats.onnx_iris,
    "xgboost-json": formats.xgboost_cancer,
    "xgboost-ubj": lambda root: formats.xgboost_cancer(root, ".ubj"),
    "lightgbm": formats.lightgbm_wine,
    "xgboost-regressor": formats.xgboost_diabetes,
    "lightgbm-regressor": formats.lightgbm_diabetes,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Trained, Path]]:
    """Each model trained and packed once."""
    root = tmp_path_factory.mktemp("formats")
    models = {}
    for key, build in BUILDERS.items():
        (root / key).mkdir()
        model = build(root / key)
        models[key] = (model, model.pack(root / key / "dir", name=key))
    return models


def _copy(trained: dict[str, tuple[Trained, Path]], key: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained[key][1], tmp_path / key))


def _edit_manifest(model_dir: Path, **changes: Any) -> None:
    path = model_dir / MANIFEST_NAME
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("key", list(BUILDERS))
def test_answers_equal_the_frameworks_own(trained: dict[str, tuple[Trained, Path]], key: str) -> None:
    model, model_dir = trained[key]
    spec = load_spec(model_dir)
    runtime = load_runtime(spec, model_dir)
    assert runtime.device == "cpu"
    got = runtime.predict(apply_transforms(spec, {model.input_name: model.rows}))
    want = model.reference(model.rows)
    assert set(want) <= set(got)
    for name, expected in want.items():
        assert got[name].shape == np.shape(expected), name
        np.testing.assert_allclose(got[name], expected, rtol=0, atol=1e-5, err_msg=f"{key} output {name}")


@pytest.mark.parametrize("key", ["onnx", "xgboost-json", "lightgbm"])
def test_tampered_artifact_is_refused_before_loading(
    trained: dict[str, tuple[Trained, Path]], tmp_path: Path, key: str
) -> None:
    model_dir = _copy(trained, key, tmp_path)
    spec = load_spec(model_dir)
    artifact = model_dir / spec.artifact.path
    artifact.write_bytes(artifact.read_bytes()[:-1] + b" ")
    with pytest.raises(ArtifactError, match="refusing to load it"):
        load_runtime(spec, model_dir)


@pytest.mark.parametrize(
    ("key", "framework"), [("xgboost-json", "XGBoost"), ("lightgbm", "LightGBM")], ids=["xgboost", "lightgbm"]
)
def test_wrong_feature_count_is_refused(
    trained: dict[str, tuple[Trained, Path]], tmp_path: Path, key: str, framework: str
) -> None:
    model_dir = _copy(trained, key, tmp_path)
    features = trained[key][0].rows.shape[1]
    _edit_manifest(model_dir, inputs=[{"name": "features", "datatype": "FP32", "shape": [-1, features + 1]}])
    with pytest.raises(RuntimeLoadError) as info:
        load_runtime(load_spec(model_dir), model_dir)
    assert str(info.value) == (
        f"input 'features' is declared with shape [-1, {features + 1}], but the {framework} model reads "
        f"{features} features per row: declare [-1, {features}]"
    )


@pytest.mark.parametrize("key", ["xgboost-regressor", "lightgbm-regressor"])
def test_a_regressor_has_no_probabilities(trained: dict[str, tuple[Trained, Path]], tmp_path: Path, key: str) -> None:
    model_dir = _copy(trained, key, tmp_path)
    _edit_manifest(model_dir, outputs=[{"name": "p", "datatype": "FP32", "shape": [-1, 2], "source": "probabilities"}])
    with pytest.raises(
        RuntimeLoadError, match=r"output 'p' asks for 'probabilities', but this .* gives only \['raw'\]"
    ):
        load_runtime(load_spec(model_dir), model_dir)


def test_onnx_manifest_must_match_the_graph(trained: dict[str, tuple[Trained, Path]], tmp_path: Path) -> None:
    model_dir = _copy(trained, "onnx", tmp_path)
    _edit_manifest(model_dir, inputs=[{"name": "features", "datatype": "FP32", "shape": [-1, 4]}])
    with pytest.raises(
        RuntimeLoadError, match=r"input 'features' is declared in the manifest but the graph's inputs are \['X'\]"
    ):
        load_runtime(load_spec(model_dir), model_dir)
    _edit_manifest(model_dir, inputs=[{"name": "X", "datatype": "FP64", "shape": [-1, 4]}])
    with pytest.raises(RuntimeLoadError, match=r"input 'X' is declared FP64, the graph has FP32"):
        load_runtime(load_spec(model_dir), model_dir)
    _edit_manifest(model_dir, inputs=[{"name": "X", "datatype": "FP32", "shape": [-1, 5]}])
    with pytest.raises(RuntimeLoadError, match=r"input 'X' is declared with shape \[-1, 5\], the graph has \[-1, 4\]"):
        load_runtime(load_spec(model_dir), model_dir)


@pytest.mark.parametrize("key", ["xgboost-json", "lightgbm"])
def test_tree_runtimes_refuse_a_gpu(trained: dict[str, tuple[Trained, Path]], key: str) -> None:
    model_dir = trained[key][1]
    with pytest.raises(RuntimeLoadError, match=r"runs on the CPU only, got device 'cuda'"):
        load_runtime(load_spec(model_dir), model_dir, "cuda")


def test_onnx_cuda_without_the_provider_names_the_package(trained: dict[str, tuple[Trained, Path]]) -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA execution provider; the refusal is for builds without it")
    model_dir = trained["onnx"][1]
    with pytest.raises(RuntimeLoadError, match="install onnxruntime-gpu in place of onnxruntime"):
        load_runtime(load_spec(model_dir), model_dir, "cuda")


@pytest.mark.skipif(
    "CUDAExecutionProvider" not in ort.get_available_providers(),
    reason="no CUDA execution provider here (needs onnxruntime-gpu and a GPU)",
)
def test_onnx_on_cuda_with_io_binding_equals_the_cpu(trained: dict[str, tuple[Trained, Path]]) -> None:
    model, model_dir = trained["onnx"]
    spec = load_spec(model_dir)
    runtime = load_runtime(spec, model_dir, "cuda")
    assert runtime.device == "cuda:0"
    got = runtime.predict({model.input_name: model.rows})
    for name, expected in model.reference(model.rows).items():
        np.testing.assert_allclose(got[name], expected, rtol=0, atol=1e-5)


def test_a_missing_framework_names_the_extra(
    trained: dict[str, tuple[Trained, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import lightgbm now raises ImportError
    monkeypatch.delitem(sys.modules, "predictor.runtimes.lightgbm_runtime", raising=False)
    model_dir = trained["lightgbm"][1]
    with pytest.raises(RuntimeLoadError) as info:
        load_runtime(load_spec(model_dir), model_dir)
    assert str(info.value) == (
        "the lightgbm runtime needs a package that is not installed (lightgbm); install servekit[lightgbm]"
    )
