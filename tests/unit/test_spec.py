"""The model manifest: valid ones round-trip, every rule rejects with a message naming field and value."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from predictor.modeldir.spec import MANIFEST_NAME, ModelSpec, SpecError, dump_spec, load_spec, parse_spec

SHA = "0123456789abcdef" * 4  # the manifest fixture's sha256

Mutation = Callable[[dict[str, Any]], None]


def _reject(manifest: dict[str, Any], mutate: Mutation) -> str:
    data = copy.deepcopy(manifest)
    mutate(data)
    with pytest.raises(SpecError) as info:
        parse_spec(data, "models/iris/model.yaml")
    message = str(info.value)
    assert message.startswith("models/iris/model.yaml: "), message
    return message


# ---- round trips ----------------------------------------------------------------------------------


def test_valid_manifest_round_trips_through_dump_and_load(tmp_path: Path, iris_spec: ModelSpec) -> None:
    path = dump_spec(iris_spec, tmp_path)

    assert path == tmp_path / MANIFEST_NAME
    loaded = load_spec(tmp_path)
    assert loaded == iris_spec
    assert loaded.inputs[0].shape == [-1, 4]
    assert loaded.outputs[1].source == "probabilities"
    assert loaded.preprocessing.feature_order == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    # Defaults stay out of the file so manifests stay short, and come back as defaults.
    text = path.read_text(encoding="utf-8")
    assert "allow_nan" not in text
    assert "runtime" not in text
    assert loaded.runtime.device == "auto"
    assert loaded.version == "1"


def test_every_optional_field_round_trips(tmp_path: Path, manifest: dict[str, Any]) -> None:
    manifest.update(
        name="digits.v2",
        version="7",
        framework="torch",
        artifact={"path": "nested/model.pt2", "sha256": SHA.upper(), "format": "torch_export"},
        inputs=[{"name": "pixels", "datatype": "FP64", "shape": [-1, 4], "allow_nan": True}],
        outputs=[{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
        preprocessing={"scaling": {"mean": [0.5, 1, 2, 3], "std": [16, 2, 1, 0.25]}, "cast": "FP32"},
        runtime={"device": "cuda:1", "half_precision": True, "threads": 4},
    )
    spec = parse_spec(manifest)
    assert spec.artifact.sha256 == SHA  # normalised to lower case
    assert spec.outputs[0].source == "raw"

    dump_spec(spec, tmp_path)
    loaded = load_spec(tmp_path)

    assert loaded == spec
    assert loaded.inputs[0].allow_nan is True
    assert loaded.preprocessing.scaling is not None
    assert loaded.preprocessing.scaling.std == [16.0, 2.0, 1.0, 0.25]
    assert loaded.runtime.threads == 4
    assert yaml.safe_load((tmp_path / MANIFEST_NAME).read_text())["artifact"]["sha256"] == SHA


def test_tensor_helpers(iris_spec: ModelSpec) -> None:
    assert iris_spec.inputs[0].numpy_dtype == "float32"
    assert iris_spec.outputs[0].numpy_dtype == "int64"
    assert iris_spec.outputs[1].metadata() == {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}
    assert iris_spec.input_named("features") is iris_spec.inputs[0]
    assert iris_spec.input_named("nope") is None


@pytest.mark.parametrize("name", ["a", "iris", "iris-v2", "my_model.v1", "a" * 63, "0"])
def test_model_names_that_are_accepted(manifest: dict[str, Any], name: str) -> None:
    manifest["name"] = name
    assert parse_spec(manifest).name == name


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_devices_that_are_accepted(manifest: dict[str, Any], device: str) -> None:
    manifest["runtime"] = {"device": device}
    assert parse_spec(manifest).runtime.device == device


# ---- every rule, with the field and the value in the message --------------------------------------


def _set(path: str, value: Any) -> Mutation:
    """Set a nested key such as ``inputs.0.shape``."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


REJECTIONS: list[tuple[str, Mutation, list[str]]] = [
    ("typo at top level", _set("max_batchsize", 8), ["max_batchsize", "Extra inputs are not permitted"]),
    ("typo in runtime", _set("runtime.devices", "cpu"), ["runtime.devices", "Extra inputs are not permitted"]),
    ("typo in a tensor", _set("inputs.0.dtype", "FP32"), ["inputs.0.dtype", "Extra inputs are not permitted"]),
    ("batch dim not -1", _set("inputs.0.shape", [4, 4]), ["inputs.0.shape", "batch axis", "got 4"]),
    ("output batch dim not -1", _set("outputs.0.shape", [1]), ["outputs.0.shape", "batch axis", "got 1"]),
    ("zero dim", _set("inputs.0.shape", [-1, 0]), ["inputs.0.shape", "[0] in [-1, 0]"]),
    ("dim below -1", _set("inputs.0.shape", [-1, -2]), ["inputs.0.shape", "[-2] in [-1, -2]"]),
    ("empty shape", _set("inputs.0.shape", []), ["inputs.0.shape", "at least 1 item"]),
    ("short sha256", _set("artifact.sha256", "abc123"), ["artifact.sha256", "64 hex digits", "'abc123'"]),
    ("non-hex sha256", _set("artifact.sha256", "g" * 64), ["artifact.sha256", repr("g" * 64)]),
    ("absolute path", _set("artifact.path", "/etc/passwd"), ["artifact.path", "relative", "'/etc/passwd'"]),
    ("parent path", _set("artifact.path", "../model.joblib"), ["artifact.path", "'../model.joblib'"]),
    ("inner parent path", _set("artifact.path", "a/../../x.pt"), ["artifact.path", "'a/../../x.pt'"]),
    ("empty path", _set("artifact.path", ""), ["artifact.path", "at least 1 character"]),
    (
        "duplicate inputs",
        _set("inputs", [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}] * 2),
        ["inputs names must be unique", "['x']"],
    ),
    (
        "duplicate outputs",
        _set("outputs", [{"name": "label", "datatype": "INT64", "shape": [-1]}] * 2),
        ["outputs names must be unique", "['label']"],
    ),
    ("no inputs", _set("inputs", []), ["inputs", "at least 1 item"]),
    ("no outputs", _set("outputs", []), ["outputs", "at least 1 item"]),
    (
        "feature_order too short",
        _set("preprocessing.feature_order", ["a", "b", "c"]),
        ["feature_order has 3 names", "'features' has 4 features", "[-1, 4]"],
    ),
    (
        "scaling too wide",
        _set("preprocessing.scaling", {"mean": [0.0] * 5, "std": [1.0] * 5}),
        ["scaling has 5 values", "'features' has 4"],
    ),
    (
        "scaling mean/std differ",
        _set("preprocessing.scaling", {"mean": [0.0] * 4, "std": [1.0] * 3}),
        ["preprocessing.scaling", "mean has 4 values but std has 3"],
    ),
    (
        "zero std",
        _set("preprocessing.scaling", {"mean": [0.0] * 4, "std": [1.0, 0.0, 1.0, 1.0]}),
        ["preprocessing.scaling", "std values must be non-zero"],
    ),
    (
        "feature_order on two inputs",
        _set(
            "inputs",
            [{"name": "a", "datatype": "FP32", "shape": [-1, 4]}, {"name": "b", "datatype": "FP32", "shape": [-1, 4]}],
        ),
        ["feature_order, scaling and cast need exactly one input tensor"],
    ),
    ("upper-case name", _set("name", "Iris"), ["name", "lowercase", "'Iris'"]),
    ("name with a slash", _set("name", "iris/v2"), ["name", "'iris/v2'"]),
    ("name with a space", _set("name", "my model"), ["name", "'my model'"]),
    ("name starting with a dash", _set("name", "-iris"), ["name", "'-iris'"]),
    ("name ending with a dot", _set("name", "iris."), ["name", "'iris.'"]),
    ("name of 64 characters", _set("name", "a" * 64), ["name", "at most 63", repr("a" * 64)]),
    ("bad device", _set("runtime.device", "gpu"), ["runtime.device", "'gpu'"]),
    ("bad device index", _set("runtime.device", "cuda:x"), ["runtime.device", "'cuda:x'"]),
    ("upper-case device", _set("runtime.device", "CUDA"), ["runtime.device", "'CUDA'"]),
    ("negative threads", _set("runtime.threads", -1), ["runtime.threads", "greater than or equal to 0"]),
    (
        "signature outside tensorflow",
        _set("runtime.signature", "serving_default"),
        ["runtime.signature is for tensorflow models, this one is sklearn"],
    ),
    (
        "another framework's format",
        _set("artifact.format", "lightgbm_text"),
        ["artifact.format 'lightgbm_text' is not a sklearn format; expected one of ['joblib', 'pickle']"],
    ),
    (
        "onnx output computed by the manifest",
        lambda d: d.update(framework="onnx", artifact={"path": "model.onnx", "sha256": SHA}),
        ["onnx outputs are the model's own (source: raw); ['label', 'probabilities'] ask for another source"],
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in REJECTIONS], ids=[i for i, _, _ in REJECTIONS])
def test_rule_rejects_with_a_precise_message(manifest: dict[str, Any], mutate: Mutation, expected: list[str]) -> None:
    message = _reject(manifest, mutate)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


# Literal-typed fields: the message must say what was written, not only what is allowed, or a user
# with three inputs cannot tell which spelling is wrong.
LITERALS: list[tuple[str, Mutation, str, str]] = [
    ("datatype", _set("inputs.0.datatype", "FLOAT32"), "inputs.0.datatype", "FLOAT32"),
    ("framework", _set("framework", "pytorch"), "framework", "pytorch"),
    ("artifact format", _set("artifact.format", "safetensors"), "artifact.format", "safetensors"),
    ("output source", _set("outputs.1.source", "logits"), "outputs.1.source", "logits"),
    ("cast", _set("preprocessing.cast", "float32"), "preprocessing.cast", "float32"),
]


@pytest.mark.parametrize(("mutate", "field", "value"), [x[1:] for x in LITERALS], ids=[x[0] for x in LITERALS])
def test_literal_field_rejects_naming_field_and_value(
    manifest: dict[str, Any], mutate: Mutation, field: str, value: str
) -> None:
    message = _reject(manifest, mutate)
    assert field in message
    assert value in message, f"the rejected value {value!r} is not named in {message!r}"


def test_every_problem_is_reported_at_once(manifest: dict[str, Any]) -> None:
    manifest["name"] = "Bad Name"
    manifest["runtime"] = {"device": "tpu"}
    message = _reject(manifest, lambda d: None)
    assert "name: " in message
    assert "runtime.device: " in message
    assert "; " in message


def test_name_with_trailing_newline_is_rejected(manifest: dict[str, Any]) -> None:
    # The name goes into URL paths and Kubernetes object names; "$" in the pattern also matches
    # before a final newline, so the check must be a full match.
    message = _reject(manifest, _set("name", "iris\n"))
    assert "name" in message


def test_sha256_with_trailing_newline_is_rejected(manifest: dict[str, Any]) -> None:
    message = _reject(manifest, _set("artifact.sha256", SHA + "\n"))
    assert "artifact.sha256" in message


def test_feature_order_with_a_repeated_name_is_rejected(manifest: dict[str, Any]) -> None:
    # A repeated name feeds one feature twice and never asks for another: width still matches.
    message = _reject(
        manifest, _set("preprocessing.feature_order", ["sepal_length", "sepal_length", "petal_length", "petal_width"])
    )
    assert "feature_order" in message
    assert "sepal_length" in message


@pytest.mark.parametrize(
    "scaling",
    [
        {"mean": [0.0] * 4, "std": [float("nan")] * 4},
        {"mean": [0.0] * 4, "std": [float("inf")] * 4},
        {"mean": [float("nan"), 0.0, 0.0, 0.0], "std": [1.0] * 4},
    ],
    ids=["nan-std", "inf-std", "nan-mean"],
)
def test_scaling_with_non_finite_values_is_rejected(manifest: dict[str, Any], scaling: dict[str, Any]) -> None:
    # Every request would turn into NaN/0 after the input checks that refuse NaN have already run.
    message = _reject(manifest, _set("preprocessing.scaling", scaling))
    assert "preprocessing.scaling" in message


# ---- reading the file -----------------------------------------------------------------------------


def test_missing_model_directory_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(SpecError, match=re.escape(f"no model.yaml in model directory '{missing}'")):
        load_spec(missing)


def test_directory_without_manifest_names_it(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=re.escape(f"no model.yaml in model directory '{tmp_path}'")):
        load_spec(tmp_path)


def test_manifest_that_is_a_directory_is_a_spec_error(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).mkdir()
    with pytest.raises(SpecError, match=re.escape(f"cannot read {tmp_path / MANIFEST_NAME}: ")):
        load_spec(tmp_path)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).write_text("name: iris\ninputs: [1, 2\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / MANIFEST_NAME}: not valid YAML")
    assert "line" in str(info.value)


@pytest.mark.parametrize(
    ("text", "kind"), [("- a\n- b\n", "list"), ("just a string\n", "str"), ("", "NoneType"), ("42\n", "int")]
)
def test_non_mapping_names_the_file_and_what_it_got(tmp_path: Path, text: str, kind: str) -> None:
    (tmp_path / MANIFEST_NAME).write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert str(info.value) == f"{tmp_path / MANIFEST_NAME}: expected a mapping at the top level, got {kind}"


def test_validation_errors_name_the_file(tmp_path: Path, manifest: dict[str, Any]) -> None:
    manifest["framework"] = "caffe"
    (tmp_path / MANIFEST_NAME).write_text(yaml.safe_dump(manifest), encoding="utf-8")
    with pytest.raises(SpecError, match="^" + re.escape(f"{tmp_path / MANIFEST_NAME}: framework: ")):
        load_spec(tmp_path)


def test_manifest_that_is_not_utf8_is_a_spec_error(tmp_path: Path, manifest: dict[str, Any]) -> None:
    # E.g. saved as UTF-16 by an editor: the server must print one line naming the file, not a traceback.
    (tmp_path / MANIFEST_NAME).write_bytes(yaml.safe_dump(manifest).encode("utf-16"))
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert str(tmp_path / MANIFEST_NAME) in str(info.value)
