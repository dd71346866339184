"""Request tensors against the declared inputs: every refusal names the input and what was expected."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from predictor.modeldir.spec import ModelSpec
from predictor.protocol.validation import (
    InputError,
    RawTensor,
    check_shape,
    check_values,
    json_decoder,
    select_outputs,
    validate_inputs,
)

Raw = Callable[[str, str, list[Any], Any], RawTensor]
ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture
def two_inputs(make_spec: Callable[..., ModelSpec]) -> ModelSpec:
    """A model with an image-like input with fixed inner dims and an INT64 side input."""
    return make_spec(
        name="two",
        inputs=[
            {"name": "image", "datatype": "FP32", "shape": [-1, 3, 2]},
            {"name": "ids", "datatype": "INT64", "shape": [-1]},
        ],
        preprocessing={},
    )


def _error(spec: ModelSpec, *tensors: RawTensor) -> str:
    with pytest.raises(InputError) as info:
        validate_inputs(spec, tensors)
    return str(info.value)


# ---- happy paths ----------------------------------------------------------------------------------


def test_flat_data_is_reshaped_to_the_declared_dtype_and_shape(iris_spec: ModelSpec, raw: Raw) -> None:
    arrays = validate_inputs(iris_spec, [raw("features", "FP32", [2, 4], [*ROW, 6.0, 2.9, 4.5, 1.5])])

    assert list(arrays) == ["features"]
    array = arrays["features"]
    assert array.dtype == np.float32
    assert array.shape == (2, 4)
    np.testing.assert_array_equal(array, np.array([ROW, [6.0, 2.9, 4.5, 1.5]], dtype=np.float32))


def test_nested_data_gives_the_same_array_as_flat(iris_spec: ModelSpec, raw: Raw) -> None:
    rows = [ROW, [6.0, 2.9, 4.5, 1.5]]
    nested = validate_inputs(iris_spec, [raw("features", "FP32", [2, 4], rows)])["features"]
    flat = validate_inputs(iris_spec, [raw("features", "FP32", [2, 4], rows[0] + rows[1])])["features"]
    np.testing.assert_array_equal(nested, flat)
    assert nested[1, 2] == np.float32(4.5)


def test_several_inputs_each_get_their_own_dtype(two_inputs: ModelSpec, raw: Raw) -> None:
    arrays = validate_inputs(
        two_inputs,
        [raw("ids", "INT64", [2], [7, 9]), raw("image", "FP32", [2, 3, 2], list(range(12)))],
    )
    assert arrays["ids"].dtype == np.int64
    np.testing.assert_array_equal(arrays["ids"], [7, 9])
    assert arrays["image"].dtype == np.float32
    assert arrays["image"].shape == (2, 3, 2)
    assert arrays["image"][1, 2, 1] == 11.0


def test_bytes_input_becomes_an_object_array(make_spec: Callable[..., ModelSpec], raw: Raw) -> None:
    spec = make_spec(inputs=[{"name": "text", "datatype": "BYTES", "shape": [-1]}], preprocessing={})
    array = validate_inputs(spec, [raw("text", "BYTES", [2], ["hello", "world"])])["text"]
    assert array.dtype == object
    assert array.tolist() == ["hello", "world"]


def test_nan_is_accepted_where_the_input_allows_it(make_spec: Callable[..., ModelSpec], raw: Raw) -> None:
    spec = make_spec(inputs=[{"name": "features", "datatype": "FP32", "shape": [-1, 4], "allow_nan": True}])
    array = validate_inputs(spec, [raw("features", "FP32", [1, 4], [1.0, float("nan"), float("inf"), 2.0])])["features"]
    assert np.isnan(array[0, 1])
    assert np.isposinf(array[0, 2])


# ---- every refusal --------------------------------------------------------------------------------


def test_unknown_input_lists_the_expected_ones(iris_spec: ModelSpec, raw: Raw) -> None:
    message = _error(iris_spec, raw("feature", "FP32", [1, 4], ROW))
    assert message == "unknown input 'feature'; model 'iris' expects 'features' (FP32, shape [-1, 4])"


def test_missing_input_is_named(two_inputs: ModelSpec, raw: Raw) -> None:
    message = _error(two_inputs, raw("image", "FP32", [1, 3, 2], [0.0] * 6))
    assert message == "missing input(s) 'ids' (INT64, shape [-1])"


def test_no_inputs_at_all_lists_the_expected_ones(iris_spec: ModelSpec) -> None:
    message = _error(iris_spec)
    assert message == "the request has no inputs; model 'iris' expects 'features' (FP32, shape [-1, 4])"


def test_duplicate_input_is_named(iris_spec: ModelSpec, raw: Raw) -> None:
    tensor = raw("features", "FP32", [1, 4], ROW)
    assert _error(iris_spec, tensor, tensor) == "input 'features' appears more than once"


def test_wrong_datatype_names_both(iris_spec: ModelSpec, raw: Raw) -> None:
    message = _error(iris_spec, raw("features", "FP64", [1, 4], ROW))
    assert message == "input 'features': datatype 'FP64' does not match the declared FP32"


def test_wrong_number_of_dims(iris_spec: ModelSpec, raw: Raw) -> None:
    message = _error(iris_spec, raw("features", "FP32", [4], ROW))
    assert message == "input 'features': shape [4] has 1 dimensions, expected 2 like [-1, 4]"


def test_wrong_fixed_dim_names_axis_and_size(two_inputs: ModelSpec, raw: Raw) -> None:
    message = _error(two_inputs, raw("image", "FP32", [1, 2, 3], [0.0] * 6), raw("ids", "INT64", [1], [1]))
    assert message == "input 'image': dimension 1 is 2, expected 3 (declared shape [-1, 3, 2])"


def test_empty_batch(iris_spec: ModelSpec, raw: Raw) -> None:
    message = _error(iris_spec, raw("features", "FP32", [0, 4], []))
    assert message == "input 'features': empty batch (shape [0, 4]); send at least one row"


def test_negative_batch_dim(iris_spec: ModelSpec, raw: Raw) -> None:
    message = _error(iris_spec, raw("features", "FP32", [-1, 4], ROW))
    assert message == "input 'features': dimension 0 is -1, expected a positive size (declared shape [-1, 4])"


@pytest.mark.parametrize("shape", [["1", 4], [1.0, 4], [True, 4], "1,4", None])
def test_shape_must_be_a_list_of_integers(iris_spec: ModelSpec, shape: Any) -> None:
    message = _error(iris_spec, RawTensor("features", "FP32", shape, _never))
    assert message == f"input 'features': shape must be a list of integers, got {shape!r}"


def _never(dtype: np.dtype[Any]) -> np.ndarray:
    raise AssertionError("data must not be decoded before the shape is checked")


def test_element_count_mismatch(iris_spec: ModelSpec, raw: Raw) -> None:
    message = _error(iris_spec, raw("features", "FP32", [2, 4], ROW))
    assert message == "input 'features': shape [2, 4] needs 8 elements, got 4"


@pytest.mark.parametrize("data", [["a", "b", "c", "d"], [[1, 2], [3]], [{"x": 1}] * 4, [None, [1], 2, 3]])
def test_non_numeric_or_ragged_data(iris_spec: ModelSpec, raw: Raw, data: Any) -> None:
    message = _error(iris_spec, raw("features", "FP32", [1, 4], data))
    assert message.startswith("input 'features': ")
    assert "datatype float32 takes numbers, got" in message or "not a rectangular list of numbers" in message


def test_data_that_is_not_a_list(iris_spec: ModelSpec, raw: Raw) -> None:
    message = _error(iris_spec, raw("features", "FP32", [1, 4], "5.1,3.5,1.4,0.2"))
    assert message == "input 'features': data must be a list, got str"


@pytest.mark.parametrize(
    ("value", "count"), [(float("nan"), 1), (float("inf"), 1), (float("-inf"), 1)], ids=["nan", "inf", "-inf"]
)
def test_non_finite_values_are_refused(iris_spec: ModelSpec, raw: Raw, value: float, count: int) -> None:
    message = _error(iris_spec, raw("features", "FP32", [1, 4], [1.0, value, 2.0, 3.0]))
    assert message == f"input 'features': {count} value(s) are NaN or infinite; this input does not allow them"


def test_non_finite_values_are_counted(iris_spec: ModelSpec, raw: Raw) -> None:
    data = [float("nan"), 1.0, float("inf"), 2.0, 3.0, 4.0, float("-inf"), 5.0]
    message = _error(iris_spec, raw("features", "FP32", [2, 4], data))
    assert message.startswith("input 'features': 3 value(s) are NaN or infinite")


def test_batch_sizes_must_agree(two_inputs: ModelSpec, raw: Raw) -> None:
    message = _error(two_inputs, raw("image", "FP32", [2, 3, 2], [0.0] * 12), raw("ids", "INT64", [3], [1, 2, 3]))
    assert message == "inputs disagree on the batch size: {'image': 2, 'ids': 3}"


# Lossy or overflowing conversions: the client must get an InputError naming the input, not a
# silently different number and not an unexpected exception type (which the server answers with 500).
@pytest.mark.parametrize(
    ("datatype", "data"),
    [("UINT8", [300]), ("UINT8", [-1]), ("INT8", [1000]), ("INT64", [1.5]), ("FP32", ["5.1"])],
    ids=["uint8-300", "uint8-negative", "int8-1000", "int64-fraction", "fp32-string"],
)
def test_values_that_do_not_fit_the_datatype_are_refused(
    make_spec: Callable[..., ModelSpec], raw: Raw, datatype: str, data: list[Any]
) -> None:
    spec = make_spec(inputs=[{"name": "x", "datatype": datatype, "shape": [-1]}], preprocessing={})
    message = _error(spec, raw("x", datatype, [1], data))
    assert "'x'" in message


# ---- the building blocks --------------------------------------------------------------------------


def test_check_shape_returns_ints(two_inputs: ModelSpec) -> None:
    assert check_shape(two_inputs.inputs[0], [5, 3, 2]) == (5, 3, 2)
    assert check_shape(two_inputs.inputs[0], (1, 3, 2)) == (1, 3, 2)


def test_check_values_ignores_integers(two_inputs: ModelSpec) -> None:
    check_values(two_inputs.inputs[1], np.array([1, 2], dtype=np.int64))  # no NaN exists for ints
    with pytest.raises(InputError, match="'image': 1 value"):
        check_values(two_inputs.inputs[0], np.array([[[np.nan, 0], [0, 0], [0, 0]]], dtype=np.float32))


def test_json_decoder_is_lazy_and_reusable() -> None:
    decode = json_decoder([1, 2, 3, 4], (2, 2), "x")
    first = decode(np.dtype("int32"))
    second = decode(np.dtype("float64"))
    assert first.dtype == np.int32
    assert second.dtype == np.float64
    np.testing.assert_array_equal(first, [[1, 2], [3, 4]])


# ---- outputs --------------------------------------------------------------------------------------


def test_no_requested_outputs_means_all_declared(iris_spec: ModelSpec) -> None:
    assert select_outputs(iris_spec, None) == ["label", "probabilities"]
    assert select_outputs(iris_spec, []) == ["label", "probabilities"]


def test_requested_outputs_keep_order_without_repeats(iris_spec: ModelSpec) -> None:
    assert select_outputs(iris_spec, ["probabilities"]) == ["probabilities"]
    assert select_outputs(iris_spec, ["probabilities", "label", "probabilities"]) == ["probabilities", "label"]


def test_unknown_output_names_it_and_the_declared_ones(iris_spec: ModelSpec) -> None:
    with pytest.raises(InputError) as info:
        select_outputs(iris_spec, ["label", "proba"])
    assert str(info.value) == "unknown output(s) ['proba']; model 'iris' has outputs ['label', 'probabilities']"
