"""Property tests: whatever bytes or JSON a client sends, the decoders answer with an InputError or a checked array;
and every valid body is accepted and decodes to exactly the values it carries.

Anything else (a TypeError, an OverflowError, a RecursionError, numpy's ValueError) would reach
the client as a 500. Bounded: a fixed number of examples per property, no deadline (the machine
is shared), derandomized so a run is repeatable.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kserve import InferInput

from predictor.modeldir.preprocessing import instances_to_tensor
from predictor.modeldir.spec import DATATYPE_TO_NUMPY, ModelSpec, parse_spec
from predictor.protocol.v2_codec import decode_request, parse_body
from predictor.protocol.validation import InputError, select_outputs, validate_inputs
from predictor.server.model import infer_input_tensor

SHA = "0" * 64
BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _spec(inputs: list[dict[str, Any]], **extra: Any) -> ModelSpec:
    return parse_spec(
        {
            "name": "m",
            "framework": "sklearn",
            "artifact": {"path": "model.joblib", "sha256": SHA},
            "inputs": inputs,
            "outputs": [{"name": "y", "datatype": "INT64", "shape": [-1]}],
            **extra,
        }
    )


IRIS = _spec(
    [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}],
    preprocessing={"feature_order": ["a", "b", "c", "d"]},
)
MIXED = _spec(
    [
        {"name": "x", "datatype": "INT64", "shape": [-1, 2]},
        {"name": "flag", "datatype": "BOOL", "shape": [-1]},
        {"name": "text", "datatype": "BYTES", "shape": [-1]},
        {"name": "small", "datatype": "UINT8", "shape": [-1, 3]},
        {"name": "half", "datatype": "FP16", "shape": [-1, 1]},
    ]
)
SPECS = st.sampled_from([IRIS, MIXED])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=5),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=30,
)
numbers = st.one_of(st.integers(min_value=-300, max_value=300), st.floats(allow_nan=False), st.booleans())
tensor_data = st.recursive(st.lists(numbers, max_size=9), lambda inner: st.lists(inner, max_size=3), max_leaves=20)
names = st.sampled_from(["features", "x", "flag", "text", "small", "half", "nope"])
datatypes = st.one_of(st.sampled_from(sorted(DATATYPE_TO_NUMPY)), st.text(max_size=6))
shapes = st.one_of(
    st.lists(st.integers(min_value=-2, max_value=6), max_size=3),
    st.lists(st.integers(min_value=-(2**70), max_value=2**70), max_size=3),
    json_values,
)


@st.composite
def v2_tensors(draw: st.DrawFn) -> dict[str, Any]:
    tensor: dict[str, Any] = {"name": draw(names), "datatype": draw(datatypes), "shape": draw(shapes)}
    if draw(st.booleans()):
        tensor["data"] = draw(st.one_of(tensor_data, json_values))
    else:
        tensor["parameters"] = {"binary_data_size": draw(st.one_of(st.integers(-4, 64), json_values))}
    return tensor


@st.composite
def near_valid_tensors(draw: st.DrawFn) -> dict[str, Any]:
    """Iris's input, right or off by a little: reaches the checks after the JSON shape ones."""
    rows = draw(st.integers(1, 3))
    width = draw(st.sampled_from([4, 4, 4, 3]))
    size = rows * width + draw(st.sampled_from([0, 0, 0, -1, 1]))
    values = draw(
        st.lists(st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=False)), min_size=size, max_size=size)
    )
    return {
        "name": "features",
        "datatype": draw(st.sampled_from(["FP32", "FP32", "INT64"])),
        "shape": [rows, width],
        "data": values,
    }


@st.composite
def v2_bodies(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A body as a client sends it: a v2 document (or any JSON), maybe followed by binary data."""
    document: Any = draw(
        st.one_of(
            st.fixed_dictionaries(
                {"inputs": st.one_of(near_valid_tensors().map(lambda t: [t]), st.lists(v2_tensors(), max_size=3))},
                optional={
                    "outputs": st.lists(st.fixed_dictionaries({"name": names}), max_size=3),
                    "id": json_values,
                    "parameters": json_values,
                },
            ),
            json_values,
        )
    )
    header = json.dumps(document).encode()  # stdlib: writes integers past 64 bits and Infinity, as some clients do
    if draw(st.booleans()):
        return header, None
    tail = draw(st.binary(max_size=64))
    length = draw(st.one_of(st.just(str(len(header))), st.text(max_size=4), st.integers(-5, 200).map(str)))
    return header + tail, length


def _decode_v2(spec: ModelSpec, body: bytes, header_length: str | None) -> dict[str, np.ndarray]:
    document, binary = parse_body(body, header_length)
    request = decode_request(document, binary)
    arrays = validate_inputs(spec, request.tensors, len(body))
    select_outputs(spec, request.requested_outputs)
    _check_arrays(spec, arrays)
    return arrays


def _check_arrays(spec: ModelSpec, arrays: dict[str, np.ndarray]) -> None:
    for tensor in spec.inputs:
        array = arrays[tensor.name]
        assert array.dtype == np.dtype(tensor.numpy_dtype), (tensor.name, array.dtype)
        assert len(array.shape) == len(tensor.shape)


@BOUNDED
@given(spec=SPECS, body=v2_bodies())
def test_v2_rest_bodies_decode_or_raise_input_error(spec: ModelSpec, body: tuple[bytes, str | None]) -> None:
    with contextlib.suppress(InputError):
        _decode_v2(spec, *body)


@BOUNDED
@given(spec=SPECS, body=st.binary(max_size=200), header_length=st.one_of(st.none(), st.text(max_size=5)))
def test_arbitrary_bytes_decode_or_raise_input_error(spec: ModelSpec, body: bytes, header_length: str | None) -> None:
    with contextlib.suppress(InputError):
        _decode_v2(spec, body, header_length)


@BOUNDED
@given(instances=json_values)
def test_v1_instances_decode_or_raise_input_error(instances: Any) -> None:
    try:
        arrays = validate_inputs(IRIS, [instances_to_tensor(IRIS, instances)])
    except InputError:
        return
    _check_arrays(IRIS, arrays)


@BOUNDED
@given(name=names, datatype=st.sampled_from(sorted(DATATYPE_TO_NUMPY)), shape=shapes, data=tensor_data)
def test_kserve_inputs_decode_or_raise_input_error(name: str, datatype: str, shape: Any, data: Any) -> None:
    """The KServe route's tensors (JSON values already parsed by KServe) take the same decoder."""
    try:
        infer_input = InferInput(name=name, shape=shape, datatype=datatype, data=data)
        raw = infer_input_tensor(infer_input)
    except (TypeError, ValueError):
        return  # KServe's own constructor refused it: its error handler answers before ours runs
    spec = IRIS if name == "features" else MIXED
    with contextlib.suppress(InputError):
        validate_inputs(spec, [raw], 1 << 20)


@BOUNDED
@given(data=st.binary(min_size=0, max_size=64), shape=st.lists(st.integers(1, 5), min_size=1, max_size=3))
def test_binary_tensors_decode_or_raise_input_error(data: bytes, shape: list[int]) -> None:
    header = orjson.dumps(
        {"inputs": [{"name": "x", "datatype": "INT64", "shape": shape, "parameters": {"binary_data_size": len(data)}}]}
    )
    with contextlib.suppress(InputError):
        _decode_v2(MIXED, header + data, str(len(header)))


# ---- valid bodies are accepted, and decode to the values sent ------------------------------------
# The properties above hold as well for a decoder that refuses everything; these do not.

fp32_values = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def valid_iris_bodies(draw: st.DrawFn) -> tuple[bytes, str | None, np.ndarray]:
    """A correct v2 body for IRIS, as JSON data or as the binary extension, and the array it holds."""
    rows = draw(st.integers(1, 4))
    values = draw(st.lists(fp32_values, min_size=rows * 4, max_size=rows * 4))
    expected = np.array(values, dtype=np.float32).reshape(rows, 4)
    tensor: dict[str, Any] = {"name": "features", "datatype": "FP32", "shape": [rows, 4]}
    if draw(st.booleans()):
        return orjson.dumps({"inputs": [{**tensor, "data": values}]}), None, expected
    data = expected.astype("<f4").tobytes()
    header = orjson.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": len(data)}}]})
    return header + data, str(len(header)), expected


@BOUNDED
@given(body=valid_iris_bodies())
def test_valid_v2_bodies_decode_to_the_values_sent(body: tuple[bytes, str | None, np.ndarray]) -> None:
    payload, header_length, expected = body
    arrays = _decode_v2(IRIS, payload, header_length)
    np.testing.assert_array_equal(arrays["features"], expected)
    assert arrays["features"].dtype == np.float32


@BOUNDED
@given(
    rows=st.integers(1, 3).flatmap(
        lambda n: st.tuples(
            st.lists(st.lists(st.integers(-(2**62), 2**62), min_size=2, max_size=2), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
            st.lists(st.text(st.characters(exclude_categories=("Cs",)), max_size=6), min_size=n, max_size=n),
            st.lists(st.lists(st.integers(0, 255), min_size=3, max_size=3), min_size=n, max_size=n),
            st.lists(st.floats(width=16, allow_nan=False, allow_infinity=False), min_size=n, max_size=n),
        )
    )
)
def test_every_datatype_decodes_to_the_values_sent(rows: tuple[list[Any], ...]) -> None:
    x, flag, text, small, half = rows
    n = len(flag)
    document = {
        "inputs": [
            {"name": "x", "datatype": "INT64", "shape": [n, 2], "data": x},
            {"name": "flag", "datatype": "BOOL", "shape": [n], "data": flag},
            {"name": "text", "datatype": "BYTES", "shape": [n], "data": text},
            {"name": "small", "datatype": "UINT8", "shape": [n, 3], "data": small},
            {"name": "half", "datatype": "FP16", "shape": [n, 1], "data": half},
        ]
    }
    arrays = _decode_v2(MIXED, orjson.dumps(document), None)
    np.testing.assert_array_equal(arrays["x"], np.array(x, dtype=np.int64))
    np.testing.assert_array_equal(arrays["flag"], np.array(flag, dtype=bool))
    assert [str(v.decode() if isinstance(v, bytes) else v) for v in arrays["text"].tolist()] == text
    np.testing.assert_array_equal(arrays["small"], np.array(small, dtype=np.uint8))
    np.testing.assert_array_equal(arrays["half"], np.array(half, dtype=np.float16).reshape(n, 1))


@BOUNDED
@given(
    values=st.lists(st.lists(fp32_values, min_size=4, max_size=4), min_size=1, max_size=4),
    keyed=st.booleans(),
)
def test_valid_v1_instances_decode_to_the_values_sent(values: list[list[float]], keyed: bool) -> None:
    instances: list[Any] = [dict(zip("abcd", row, strict=True)) for row in values] if keyed else values
    arrays = validate_inputs(IRIS, [instances_to_tensor(IRIS, instances)])
    np.testing.assert_array_equal(arrays["features"], np.array(values, dtype=np.float32))


def test_a_shape_larger_than_the_body_is_refused_before_decoding() -> None:
    body = orjson.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [10**12, 4], "data": [1]}]})
    document, binary = parse_body(body, None)
    request = decode_request(document, binary)

    def never(_: np.dtype[Any]) -> np.ndarray:
        raise AssertionError("decoded a tensor whose shape the body cannot hold")

    tensors = [type(t)(t.name, t.datatype, t.shape, never) for t in request.tensors]
    try:
        validate_inputs(IRIS, tensors, len(body))
    except InputError as exc:
        assert str(exc) == (
            f"input 'features': shape [1000000000000, 4] declares 4000000000000 elements, "
            f"more than a request of {len(body)} bytes can hold"
        )
    else:
        raise AssertionError("the shape was accepted")
