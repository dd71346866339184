"""v1 ``instances`` -> the declared input tensor, and the manifest's scaling and casts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from predictor.modeldir.preprocessing import apply_transforms, instances_to_tensor
from predictor.modeldir.spec import ModelSpec, SpecError
from predictor.protocol.validation import InputError, validate_inputs

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]


def _array(spec: ModelSpec, instances: Any) -> np.ndarray:
    return validate_inputs(spec, [instances_to_tensor(spec, instances)])[spec.inputs[0].name]


def _error(spec: ModelSpec, instances: Any) -> str:
    with pytest.raises(InputError) as info:
        _array(spec, instances)
    return str(info.value)


# ---- v1 instances ---------------------------------------------------------------------------------


def test_list_rows_become_the_declared_input(iris_spec: ModelSpec) -> None:
    tensor = instances_to_tensor(iris_spec, ROWS)
    assert tensor.name == "features"
    assert tensor.datatype == "FP32"
    assert list(tensor.shape) == [2, 4]

    array = _array(iris_spec, ROWS)
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, np.array(ROWS, dtype=np.float32))


def test_dict_rows_follow_feature_order_not_key_order(iris_spec: ModelSpec) -> None:
    as_dicts = [
        {"petal_width": 0.2, "sepal_length": 5.1, "petal_length": 1.4, "sepal_width": 3.5},
        {"sepal_width": 2.9, "petal_width": 1.3, "sepal_length": 6.2, "petal_length": 4.3},
    ]
    np.testing.assert_array_equal(_array(iris_spec, as_dicts), np.array(ROWS, dtype=np.float32))


def test_dict_rows_need_a_feature_order(make_spec: Callable[..., ModelSpec]) -> None:
    spec = make_spec(preprocessing={})
    message = _error(spec, [dict(zip(FEATURES, ROWS[0], strict=True))])
    assert message == "instance 0 is an object, but model 'iris' declares no feature_order; send lists"


def test_missing_feature_names_the_row_and_feature(iris_spec: ModelSpec) -> None:
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4}
    message = _error(iris_spec, [dict(zip(FEATURES, ROWS[0], strict=True)), row])
    assert message == f"instance 1: missing features ['petal_width'], unknown features []; expected {FEATURES}"


def test_unknown_feature_names_the_row_and_feature(iris_spec: ModelSpec) -> None:
    row = {**dict(zip(FEATURES, ROWS[0], strict=True)), "colour": 3}
    message = _error(iris_spec, [row])
    assert message == f"instance 0: missing features [], unknown features ['colour']; expected {FEATURES}"


def test_mixed_rows_are_refused(iris_spec: ModelSpec) -> None:
    message = _error(iris_spec, [ROWS[0], dict(zip(FEATURES, ROWS[1], strict=True))])
    assert message == "'instances' mixes objects and lists; send one kind"


@pytest.mark.parametrize(
    "instances",
    [[[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0, 4.0], 5.0]],
    ids=["short-row", "scalar-row"],
)
def test_ragged_rows_are_refused(iris_spec: ModelSpec, instances: Any) -> None:
    message = _error(iris_spec, instances)
    assert message == "input 'features': rows have different lengths; every row needs 4 values"


def test_rows_of_the_wrong_width_fail_the_shape_check(iris_spec: ModelSpec) -> None:
    message = _error(iris_spec, [[1.0, 2.0, 3.0]])
    assert message == "input 'features': dimension 1 is 3, expected 4 (declared shape [-1, 4])"


def test_flat_instances_have_the_wrong_number_of_dims(iris_spec: ModelSpec) -> None:
    message = _error(iris_spec, [1.0, 2.0, 3.0, 4.0])
    assert message == "input 'features': shape [4] has 1 dimensions, expected 2 like [-1, 4]"


def test_empty_instances_are_refused(iris_spec: ModelSpec) -> None:
    assert _error(iris_spec, []) == "'instances' is empty; send at least one row"


@pytest.mark.parametrize(("instances", "kind"), [({"a": 1}, "dict"), ("1,2,3,4", "str"), (None, "NoneType")])
def test_instances_must_be_a_list(iris_spec: ModelSpec, instances: Any, kind: str) -> None:
    assert _error(iris_spec, instances) == f"'instances' must be a list of rows, got {kind}"


def test_multi_input_model_refuses_v1(make_spec: Callable[..., ModelSpec]) -> None:
    spec = make_spec(
        inputs=[{"name": "a", "datatype": "FP32", "shape": [-1, 4]}, {"name": "b", "datatype": "FP32", "shape": [-1]}],
        preprocessing={},
    )
    with pytest.raises(InputError) as info:
        instances_to_tensor(spec, ROWS)
    assert str(info.value) == "v1 instances need a single-input model; model 'iris' has inputs ['a', 'b']: use v2"


def test_nested_rows_for_a_three_dim_input(make_spec: Callable[..., ModelSpec]) -> None:
    spec = make_spec(inputs=[{"name": "img", "datatype": "INT32", "shape": [-1, 2, 2]}], preprocessing={})
    array = _array(spec, [[[1, 2], [3, 4]], [[5, 6], [7, 8]]])
    assert array.dtype == np.int32
    assert array.shape == (2, 2, 2)
    assert array[1, 0, 1] == 6
    message = _error(spec, [[[1, 2], [3, 4]], [[5, 6], [7]]])
    assert "rows have different lengths; every row needs 2 values" in message


# ---- transforms -----------------------------------------------------------------------------------


def _scaled_spec(make_spec: Callable[..., ModelSpec], **pre: Any) -> ModelSpec:
    return make_spec(preprocessing={"scaling": {"mean": [1.0, 2.0, 3.0, 4.0], "std": [2.0, 4.0, 0.5, 1.0]}, **pre})


def test_no_transforms_hand_back_the_same_inputs(iris_spec: ModelSpec) -> None:
    inputs = {"features": np.array(ROWS, dtype=np.float32)}
    assert apply_transforms(iris_spec, inputs) is inputs


def test_scaling_values_and_dtype(make_spec: Callable[..., ModelSpec]) -> None:
    spec = _scaled_spec(make_spec)
    original = np.array([[3.0, 6.0, 4.0, 4.0], [1.0, 2.0, 3.0, 5.5]], dtype=np.float32)
    before = original.copy()

    out = apply_transforms(spec, {"features": original})["features"]

    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[1.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 1.5]])
    np.testing.assert_array_equal(original, before)  # the request's array is not scaled in place


def test_scaling_keeps_fp64_precision(make_spec: Callable[..., ModelSpec]) -> None:
    spec = make_spec(
        inputs=[{"name": "features", "datatype": "FP64", "shape": [-1, 4]}],
        preprocessing={"scaling": {"mean": [0.0] * 4, "std": [3.0] * 4}},
    )
    out = apply_transforms(spec, {"features": np.ones((1, 4), dtype=np.float64)})["features"]
    assert out.dtype == np.float64
    assert out[0, 0] == 1.0 / 3.0  # exact in float64, would differ after a float32 round trip


def test_scaling_an_integer_input_gives_fp32(make_spec: Callable[..., ModelSpec]) -> None:
    spec = make_spec(
        inputs=[{"name": "features", "datatype": "INT64", "shape": [-1, 4]}],
        preprocessing={"scaling": {"mean": [8.0] * 4, "std": [16.0] * 4}},
    )
    out = apply_transforms(spec, {"features": np.array([[0, 8, 16, 12]], dtype=np.int64)})["features"]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[-0.5, 0.0, 0.5, 0.25]])


def test_cast_changes_the_dtype_only(make_spec: Callable[..., ModelSpec]) -> None:
    spec = make_spec(
        inputs=[{"name": "features", "datatype": "FP64", "shape": [-1, 4]}], preprocessing={"cast": "FP32"}
    )
    source = np.array([[0.1, 1e10, -2.5, 3.0]], dtype=np.float64)
    out = apply_transforms(spec, {"features": source})["features"]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, source.astype(np.float32))


def test_scaling_then_cast(make_spec: Callable[..., ModelSpec]) -> None:
    spec = _scaled_spec(make_spec, cast="FP16")
    out = apply_transforms(spec, {"features": np.array([[3.0, 6.0, 4.0, 4.0]], dtype=np.float32)})["features"]
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, np.array([[1.0, 1.0, 2.0, 0.0]], dtype=np.float16))


def test_cast_on_a_multi_input_model_casts_every_input_or_is_refused(make_spec: Callable[..., ModelSpec]) -> None:
    # "Cast the input to this datatype": with two inputs, casting only the first one silently would
    # hand the model mixed dtypes. Either the manifest is refused (like feature_order and scaling)
    # or every input is cast.
    inputs_decl = [
        {"name": "a", "datatype": "FP64", "shape": [-1, 2]},
        {"name": "b", "datatype": "FP64", "shape": [-1, 2]},
    ]
    try:
        spec = make_spec(inputs=inputs_decl, preprocessing={"cast": "FP32"})
    except SpecError as exc:
        assert "cast" in str(exc)
        return
    out = apply_transforms(spec, {"a": np.zeros((1, 2)), "b": np.zeros((1, 2))})
    assert {name: str(a.dtype) for name, a in out.items()} == {"a": "float32", "b": "float32"}
