"""The pure rules behind ``servekit-model``: tensors drafted from a model's signature, sample rows,
and the comparison ``check`` makes."""

from __future__ import annotations

import numpy as np
import pytest

from predictor.modelcli.errors import CommandError
from predictor.modelcli.payloads import differences, read_expected, tensors_of
from predictor.modelcli.samples import sample_inputs
from predictor.modelcli.signature import classifier_outputs, feature_input, given_feature_names, onnx_tensor
from predictor.modeldir.spec import ModelSpec

SPEC = ModelSpec.model_validate(
    {
        "name": "m",
        "framework": "onnx",
        "artifact": {"path": "model.onnx", "sha256": "0" * 64},
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "ids", "datatype": "INT64", "shape": [-1, -1]},
            {"name": "mask", "datatype": "BOOL", "shape": [-1, 2]},
        ],
        "outputs": [
            {"name": "y", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "k", "datatype": "INT64", "shape": [-1]},
        ],
    }
)


@pytest.mark.parametrize(
    ("names", "count", "expected"),
    [
        (["age", "plan"], 2, ["age", "plan"]),
        (["Column_0", "Column_1"], 2, None),  # LightGBM's stand-ins
        (["f0", "f1"], 2, None),  # XGBoost's
        (["age"], 2, None),  # not one per feature
        (["a", "a"], 2, None),  # repeated
        (None, 2, None),
    ],
)
def test_feature_names_worth_keeping(names: list[str] | None, count: int, expected: list[str] | None) -> None:
    assert given_feature_names(names, count) == expected


def test_drafted_tensors() -> None:
    assert feature_input(30) == {"name": "features", "datatype": "FP32", "shape": [-1, 30]}
    assert [o["name"] for o in classifier_outputs(3)] == ["label", "probabilities"]
    assert classifier_outputs(3, with_label=False)[0]["shape"] == [-1, 3]
    assert onnx_tensor("x", "tensor(float)", ["batch", 4], "input") == {
        "name": "x",
        "datatype": "FP32",
        "shape": [-1, 4],
    }
    with pytest.raises(CommandError, match="reads 0 features per row"):
        feature_input(0)
    with pytest.raises(CommandError, match="graph output 'y' is a scalar"):
        onnx_tensor("y", "tensor(float)", [], "output")


def test_sample_rows_follow_the_manifest() -> None:
    sample = sample_inputs(SPEC, 4)
    assert {name: (a.shape, a.dtype.name) for name, a in sample.items()} == {
        "x": ((4, 3), "float32"),
        "ids": ((4, 1), "int64"),  # a free dimension is 1, as the server's start-up check makes it
        "mask": ((4, 2), "bool"),
    }
    np.testing.assert_array_equal(sample_inputs(SPEC, 4)["x"], sample["x"])  # seeded


def test_payload_forms() -> None:
    assert tensors_of({"outputs": [{"name": "y", "data": [1]}]}, "outputs", "f") == [{"name": "y", "data": [1]}]
    assert tensors_of({"y": [[1, 2]]}, "outputs", "f") == [{"name": "y", "data": [[1, 2]]}]
    with pytest.raises(CommandError, match=r"f: expected a v2 body with an 'inputs' list"):
        tensors_of([1, 2], "inputs", "f")
    with pytest.raises(CommandError, match=r"f: outputs\[0\] needs 'name' and 'data'"):
        tensors_of({"outputs": [{"name": "y"}]}, "outputs", "f")
    with pytest.raises(CommandError, match=r"f: output 'z' is not declared; the model's outputs are \['k', 'y'\]"):
        read_expected(SPEC, {"z": [1]}, "f")


def test_differences_name_the_worst_value() -> None:
    want = {"y": np.array([[0.1, 0.9], [0.5, 0.5]], np.float32), "k": np.array([1, 0])}
    assert differences(want, {"y": want["y"] + 1e-6, "k": np.array([1, 0])}, 1e-5) == []
    got = {"y": want["y"] + np.array([[0, 0], [0, 0.25]], np.float32), "k": np.array([1, 2])}
    lines = differences(want, got, 1e-5)
    assert lines[0].startswith("y: largest difference 0.25 at [1, 1]")
    assert lines[1].startswith("k: largest difference 1 at [1] (got 2, expected 0")
    assert differences(want, {"y": want["y"][:1], "k": want["k"]}, 1e-5) == ["y: shape [1, 2], expected [2, 2]"]
