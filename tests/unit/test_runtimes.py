"""Runtimes on the example models: outputs are right, and a wrong or broken artifact never loads."""

from __future__ import annotations

import logging
import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_iris
from sklearn.linear_model import LinearRegression
from sklearn.svm import SVC

from predictor.examples import sklearn_iris, torch_digits
from predictor.modeldir.artifacts import ArtifactError, sha256_of
from predictor.modeldir.preprocessing import apply_transforms
from predictor.modeldir.spec import ModelSpec, Runtime, SpecError, dump_spec, load_spec, parse_spec
from predictor.runtimes import ModelRuntime, RuntimeLoadError, load_runtime

# torch 2.13 deprecates TorchScript (torch.jit.trace/save/load); the torchscript example and
# runtime still use it on purpose, so only that deprecation is silenced here.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")

TORCH_FORMATS = ["torchscript", "torch_export"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each example model built once: the iris LogisticRegression and a small digits MLP per format."""
    root = tmp_path_factory.mktemp("models")
    dirs = {"sklearn": root / "iris"}
    sklearn_iris.build(dirs["sklearn"])
    for fmt in TORCH_FORMATS:
        dirs[fmt] = root / fmt
        torch_digits.build(dirs[fmt], hidden=32, epochs=3, fmt=fmt)  # type: ignore[arg-type]
    return dirs


@pytest.fixture
def copy_of(built: dict[str, Path], tmp_path: Path) -> Any:
    """A private copy of a built model directory, for tests that break it."""

    def copy(kind: str) -> Path:
        return Path(shutil.copytree(built[kind], tmp_path / kind))

    return copy


def _predict(runtime: ModelRuntime, spec: ModelSpec, features: np.ndarray) -> dict[str, np.ndarray]:
    return runtime.predict(apply_transforms(spec, {spec.inputs[0].name: features}))


def _set_artifact(model_dir: Path, **fields: Any) -> ModelSpec:
    """Rewrite the manifest's artifact entry (hash, format, path) as a user editing model.yaml would."""
    spec = load_spec(model_dir)
    spec = spec.model_copy(update={"artifact": spec.artifact.model_copy(update=fields)})
    dump_spec(spec, model_dir)
    return load_spec(model_dir)


def _write_sklearn_model(model_dir: Path, estimator: Any, outputs: list[dict[str, Any]], fmt: str = "joblib") -> None:
    model_dir.mkdir()
    artifact = model_dir / ("model.pkl" if fmt == "pickle" else "model.joblib")
    if fmt == "pickle":
        artifact.write_bytes(pickle.dumps(estimator))
    else:
        joblib.dump(estimator, artifact)
    spec = parse_spec(
        {
            "name": "custom",
            "framework": "sklearn",
            "artifact": {"path": artifact.name, "sha256": sha256_of(artifact), "format": fmt},
            "inputs": [{"name": "features", "datatype": "FP64", "shape": [-1, 4]}],
            "outputs": outputs,
        }
    )
    dump_spec(spec, model_dir)


# ---- scikit-learn ---------------------------------------------------------------------------------


def test_sklearn_labels_and_probabilities_match_the_estimator(built: dict[str, Path]) -> None:
    spec = load_spec(built["sklearn"])
    runtime = load_runtime(spec, built["sklearn"])
    estimator = joblib.load(built["sklearn"] / spec.artifact.path)
    iris = load_iris()

    out = _predict(runtime, spec, iris.data.astype(np.float32))

    assert runtime.device == "cpu"
    assert set(out) == {"label", "probabilities"}
    assert out["label"].dtype == np.int64
    assert out["probabilities"].dtype == np.float32
    assert out["probabilities"].shape == (150, 3)
    np.testing.assert_array_equal(out["label"], estimator.predict(iris.data.astype(np.float32)))
    np.testing.assert_allclose(out["probabilities"], estimator.predict_proba(iris.data.astype(np.float32)), rtol=1e-6)
    np.testing.assert_array_equal(out["label"], out["probabilities"].argmax(axis=1))
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, rtol=1e-6)
    assert (out["label"] == iris.target).mean() > 0.9


@pytest.mark.parametrize("device", [None, "auto", "cpu"])
def test_sklearn_runs_on_the_cpu(built: dict[str, Path], device: str | None) -> None:
    runtime = load_runtime(load_spec(built["sklearn"]), built["sklearn"], device)
    assert runtime.device == "cpu"


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_sklearn_refuses_cuda(built: dict[str, Path], device: str) -> None:
    with pytest.raises(RuntimeLoadError) as info:
        load_runtime(load_spec(built["sklearn"]), built["sklearn"], device)
    assert str(info.value) == f"scikit-learn models run on the CPU only, got device {device!r}"


def test_sklearn_refuses_cuda_from_the_manifest(copy_of: Any) -> None:
    model_dir = copy_of("sklearn")
    spec = load_spec(model_dir).model_copy(update={"runtime": Runtime(device="cuda")})
    with pytest.raises(RuntimeLoadError, match="CPU only, got device 'cuda'"):
        load_runtime(spec, model_dir)


def test_sklearn_pickle_format_loads(tmp_path: Path) -> None:
    iris = load_iris()
    estimator = LinearRegression().fit(iris.data, iris.target)
    _write_sklearn_model(
        tmp_path / "m", estimator, [{"name": "value", "datatype": "FP64", "shape": [-1], "source": "raw"}], "pickle"
    )
    spec = load_spec(tmp_path / "m")
    out = load_runtime(spec, tmp_path / "m").predict({"features": iris.data[:5]})
    np.testing.assert_allclose(out["value"], estimator.predict(iris.data[:5]))


@pytest.mark.parametrize("estimator", [LinearRegression(), SVC()], ids=["LinearRegression", "SVC-without-probability"])
def test_probabilities_need_predict_proba(tmp_path: Path, estimator: Any) -> None:
    iris = load_iris()
    estimator.fit(iris.data, iris.target)
    _write_sklearn_model(
        tmp_path / "m",
        estimator,
        [
            {"name": "label", "datatype": "INT64", "shape": [-1], "source": "label"},
            {"name": "proba", "datatype": "FP32", "shape": [-1, 3], "source": "probabilities"},
        ],
    )
    with pytest.raises(RuntimeLoadError) as info:
        load_runtime(load_spec(tmp_path / "m"), tmp_path / "m")
    name = type(estimator).__name__
    assert str(info.value) == f"output 'proba' needs {name}.predict_proba(), which this estimator lacks"


def test_sklearn_takes_exactly_one_input(copy_of: Any) -> None:
    model_dir = copy_of("sklearn")
    spec = load_spec(model_dir)
    two = spec.model_copy(update={"inputs": [spec.inputs[0], spec.inputs[0].model_copy(update={"name": "other"})]})
    with pytest.raises(RuntimeLoadError, match="take one input tensor, the manifest declares 2"):
        load_runtime(two, model_dir)


# ---- torch ----------------------------------------------------------------------------------------


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as on a machine without a GPU, wherever the tests run."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("fmt", TORCH_FORMATS)
def test_torch_labels_are_the_argmax_of_probabilities(built: dict[str, Path], fmt: str) -> None:
    spec = load_spec(built[fmt])
    runtime = load_runtime(spec, built[fmt], "cpu")
    digits = load_digits()

    out = _predict(runtime, spec, digits.data.astype(np.float32))  # raw 0..16 pixels; the manifest scales them

    assert runtime.device == "cpu"
    assert out["label"].dtype == np.int64
    assert out["label"].shape == (len(digits.data),)
    assert out["probabilities"].dtype == np.float32
    assert out["probabilities"].shape == (len(digits.data), 10)
    np.testing.assert_array_equal(out["label"], out["probabilities"].argmax(axis=1))
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert (out["probabilities"] >= 0).all()
    # Three epochs reach about 70 % on the training digits; chance is 10 %.
    assert (out["label"] == digits.target).mean() > 0.5


def test_torchscript_and_torch_export_give_the_same_answers(built: dict[str, Path]) -> None:
    # Same seed, same training: the two formats hold the same network, so they must agree.
    pixels = load_digits().data[:64].astype(np.float32)
    results = []
    for fmt in TORCH_FORMATS:
        spec = load_spec(built[fmt])
        results.append(_predict(load_runtime(spec, built[fmt], "cpu"), spec, pixels))
    np.testing.assert_allclose(results[0]["probabilities"], results[1]["probabilities"], atol=1e-5)
    np.testing.assert_array_equal(results[0]["label"], results[1]["label"])


@pytest.mark.parametrize("fmt", TORCH_FORMATS)
def test_torch_batch_of_one_and_dynamic_batch_sizes(built: dict[str, Path], fmt: str) -> None:
    spec = load_spec(built[fmt])
    runtime = load_runtime(spec, built[fmt], "cpu")
    pixels = load_digits().data[:7].astype(np.float32)
    together = _predict(runtime, spec, pixels)
    one = _predict(runtime, spec, pixels[3:4])
    assert one["probabilities"].shape == (1, 10)
    np.testing.assert_allclose(one["probabilities"][0], together["probabilities"][3], atol=1e-6)


def test_raw_output_is_the_logits(built: dict[str, Path]) -> None:
    spec = load_spec(built["torchscript"])
    raw_out = spec.outputs[1].model_copy(update={"name": "logits", "source": "raw"})
    with_logits = spec.model_copy(update={"outputs": [*spec.outputs, raw_out]})
    out = _predict(load_runtime(with_logits, built["torchscript"], "cpu"), with_logits, np.ones((2, 64), np.float32))
    np.testing.assert_allclose(
        out["probabilities"], torch.softmax(torch.from_numpy(out["logits"]), -1).numpy(), atol=1e-6
    )


def test_auto_device_is_the_cpu_without_cuda(built: dict[str, Path], no_cuda: None) -> None:
    assert load_runtime(load_spec(built["torch_export"]), built["torch_export"]).device == "cpu"


@pytest.mark.parametrize("fmt", TORCH_FORMATS)
def test_cuda_without_cuda_is_a_load_error(built: dict[str, Path], no_cuda: None, fmt: str) -> None:
    with pytest.raises(RuntimeLoadError) as info:
        load_runtime(load_spec(built[fmt]), built[fmt], "cuda")
    assert str(info.value) == "device 'cuda' asked for, but torch sees no CUDA device"


def test_cuda_index_past_the_devices_is_a_load_error(built: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeLoadError) as info:
        load_runtime(load_spec(built["torchscript"]), built["torchscript"], "cuda:3")
    assert str(info.value) == "device 'cuda:3' asked for, but only 1 CUDA device(s) exist"


def test_half_precision_is_ignored_on_the_cpu(
    built: dict[str, Path], caplog: pytest.LogCaptureFixture, no_cuda: None
) -> None:
    spec = load_spec(built["torch_export"])
    spec = spec.model_copy(update={"runtime": spec.runtime.model_copy(update={"half_precision": True})})
    with caplog.at_level(logging.INFO, logger="predictor.runtimes.torch_runtime"):
        runtime = load_runtime(spec, built["torch_export"])
    out = _predict(runtime, spec, np.ones((1, 64), np.float32))
    assert out["probabilities"].dtype == np.float32
    assert "half_precision is ignored on cpu" in caplog.text


# ---- unknown formats and frameworks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fmt", "message"),
    [
        (
            "sklearn",
            "torchscript",
            "artifact.format 'torchscript' is not a sklearn format; expected one of ['joblib', 'pickle']",
        ),
        (
            "torchscript",
            "joblib",
            "artifact.format 'joblib' is not a torch format; expected one of ['torchscript', 'torch_export']",
        ),
        ("sklearn", "onnx", "artifact.format 'onnx' is not a sklearn format; expected one of ['joblib', 'pickle']"),
    ],
)
def test_format_of_another_framework_is_refused_by_the_manifest(
    copy_of: Any, kind: str, fmt: str, message: str
) -> None:
    model_dir = copy_of(kind)
    with pytest.raises(SpecError) as info:
        _set_artifact(model_dir, format=fmt)
    assert message in str(info.value)


@pytest.mark.parametrize("fmt", TORCH_FORMATS)
def test_torch_format_follows_the_file_suffix_when_not_given(copy_of: Any, fmt: str) -> None:
    # .pt2 is torch's suffix for exported programs, .pt for TorchScript archives.
    model_dir = copy_of(fmt)
    spec = _set_artifact(model_dir, format=None)
    assert "format" not in (model_dir / "model.yaml").read_text()
    out = _predict(load_runtime(spec, model_dir, "cpu"), spec, np.ones((2, 64), np.float32))
    assert out["probabilities"].shape == (2, 10)


def test_unknown_format_is_refused_by_the_manifest(copy_of: Any) -> None:
    model_dir = copy_of("sklearn")
    text = (model_dir / "model.yaml").read_text().replace("format: joblib", "format: safetensors")
    (model_dir / "model.yaml").write_text(text)
    with pytest.raises(SpecError, match=r"artifact\.format: "):
        load_spec(model_dir)


def test_unknown_framework_is_refused(built: dict[str, Path]) -> None:
    # model_copy skips validation: a framework the manifest would refuse reaches the loader.
    spec = load_spec(built["sklearn"]).model_copy(update={"framework": "caffe"})
    with pytest.raises(RuntimeLoadError) as info:
        load_runtime(spec, built["sklearn"])
    assert (
        str(info.value)
        == "no runtime for framework 'caffe'; known: ['lightgbm', 'onnx', 'sklearn', 'tensorflow', 'torch', 'xgboost']"
    )


def test_every_manifest_framework_has_a_runtime_and_an_install_hint() -> None:
    from typing import get_args

    from predictor import runtimes
    from predictor.modeldir.spec import FORMATS_BY_FRAMEWORK, Framework

    frameworks = set(get_args(Framework))
    assert set(runtimes._LOADERS) == frameworks == set(FORMATS_BY_FRAMEWORK)
    assert set(runtimes._INSTALL_HINTS) == frameworks - {"sklearn"}  # sklearn is a base dependency


def test_torch_model_without_torch_installed(built: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "predictor.runtimes.torch_runtime", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail like a missing package
    with pytest.raises(RuntimeLoadError) as info:
        load_runtime(load_spec(built["torchscript"]), built["torchscript"])
    assert str(info.value) == "the torch runtime needs a package that is not installed (torch); install servekit[torch]"


def test_sklearn_model_without_sklearn_names_no_extra_that_does_not_exist(
    built: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "predictor.runtimes.sklearn_runtime", raising=False)
    monkeypatch.setitem(sys.modules, "joblib", None)
    with pytest.raises(RuntimeLoadError) as info:
        load_runtime(load_spec(built["sklearn"]), built["sklearn"])
    assert str(info.value) == (
        "the sklearn runtime needs a package that is not installed (joblib); "
        "reinstall servekit: scikit-learn and joblib are among its own dependencies"
    )


# ---- artifacts: integrity before anything is loaded -----------------------------------------------


@pytest.mark.parametrize("kind", ["sklearn", *TORCH_FORMATS])
def test_one_changed_byte_is_refused_naming_both_hashes(copy_of: Any, kind: str) -> None:
    model_dir = copy_of(kind)
    spec = load_spec(model_dir)
    artifact = model_dir / spec.artifact.path
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.write_bytes(bytes(data))
    actual = sha256_of(artifact)

    with pytest.raises(ArtifactError) as info:
        load_runtime(spec, model_dir, "cpu")

    message = str(info.value)
    assert actual != spec.artifact.sha256
    assert f"has sha256 {actual}, but the manifest expects {spec.artifact.sha256}" in message
    assert str(artifact.resolve()) in message


class _Payload:
    """A pickle that, when loaded, creates a file: proof of whether unpickling ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def _write_payload_model(model_dir: Path, marker: Path, sha256: str | None = None) -> None:
    model_dir.mkdir()
    artifact = model_dir / "model.pkl"
    artifact.write_bytes(pickle.dumps(_Payload(marker)))
    spec = parse_spec(
        {
            "name": "payload",
            "framework": "sklearn",
            "artifact": {"path": "model.pkl", "sha256": sha256 or sha256_of(artifact), "format": "pickle"},
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}],
        }
    )
    dump_spec(spec, model_dir)


def test_hash_mismatch_is_refused_before_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    _write_payload_model(tmp_path / "m", marker, sha256="0" * 64)

    with pytest.raises(ArtifactError, match=r"but the manifest expects 0{64}; refusing to load it$"):
        load_runtime(load_spec(tmp_path / "m"), tmp_path / "m")

    assert not marker.exists(), "the artifact was unpickled although its hash did not match"


def test_payload_does_run_when_the_hash_matches(tmp_path: Path) -> None:
    # The control for the test above: the same payload does create the marker once it is trusted.
    marker = tmp_path / "unpickled"
    _write_payload_model(tmp_path / "m", marker)

    with pytest.raises(RuntimeLoadError, match=r"output 'y' needs NoneType\.predict\(\)"):
        load_runtime(load_spec(tmp_path / "m"), tmp_path / "m")

    assert marker.exists()


@pytest.mark.parametrize("kind", ["sklearn", *TORCH_FORMATS])
def test_missing_artifact(copy_of: Any, kind: str) -> None:
    model_dir = copy_of(kind)
    spec = load_spec(model_dir)
    (model_dir / spec.artifact.path).unlink()
    with pytest.raises(ArtifactError) as info:
        load_runtime(spec, model_dir, "cpu")
    assert (
        str(info.value) == f"artifact {spec.artifact.path!r} not found in model directory {str(model_dir.resolve())!r}"
    )


def test_artifact_symlink_out_of_the_model_directory_is_refused(copy_of: Any, tmp_path: Path) -> None:
    model_dir = copy_of("sklearn")
    spec = load_spec(model_dir)
    outside = tmp_path / "elsewhere.joblib"
    (model_dir / spec.artifact.path).rename(outside)
    (model_dir / spec.artifact.path).symlink_to(outside)
    with pytest.raises(ArtifactError, match="resolves outside the model directory"):
        load_runtime(spec, model_dir)


@pytest.mark.parametrize(
    ("kind", "fmt"), [("sklearn", "joblib"), ("torchscript", "torchscript"), ("torch_export", "torch_export")]
)
def test_corrupt_artifact_with_the_right_hash_is_a_load_error(copy_of: Any, kind: str, fmt: str) -> None:
    model_dir = copy_of(kind)
    artifact = model_dir / load_spec(model_dir).artifact.path
    artifact.write_bytes(b"this is not a model\x00\x01\x02" * 10)
    spec = _set_artifact(model_dir, sha256=sha256_of(artifact))

    with pytest.raises(RuntimeLoadError) as info:
        load_runtime(spec, model_dir, "cpu")

    assert str(info.value).startswith(f"cannot load {fmt} artifact {str(artifact.resolve())!r}: ")


def test_sklearn_pickle_format_of_garbage_is_a_load_error(copy_of: Any) -> None:
    model_dir = copy_of("sklearn")
    artifact = model_dir / "model.joblib"
    artifact.write_bytes(b"\x80\x04garbage")
    spec = _set_artifact(model_dir, sha256=sha256_of(artifact), format="pickle")
    with pytest.raises(RuntimeLoadError, match=r"^cannot load pickle artifact .*: UnpicklingError"):
        load_runtime(spec, model_dir)


def test_transformer_example_serves_any_batch_and_any_token_id(tmp_path: Path) -> None:
    from predictor.examples import torch_transformer

    spec = torch_transformer.build(tmp_path, vocabulary=64, length=8, width=16, heads=2, hidden=32, layers=1)
    runtime = load_runtime(spec, tmp_path, "cpu")
    tokens = np.random.default_rng(0).integers(0, 64, (5, 8), dtype=np.int64)
    batch = runtime.predict({"tokens": tokens})
    assert batch["probabilities"].shape == (5, 4)
    np.testing.assert_allclose(batch["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    one = runtime.predict({"tokens": tokens[:1]})
    np.testing.assert_allclose(one["probabilities"], batch["probabilities"][:1], rtol=1e-4, atol=1e-6)
    # Ids outside the vocabulary are clamped, never an index error (on a GPU: a device-side assert).
    wild = runtime.predict({"tokens": np.array([[-5, 70, 10**9, 0, 1, 2, 3, 63]], dtype=np.int64)})
    assert wild["label"].shape == (1,)
