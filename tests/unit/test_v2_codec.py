"""Open Inference Protocol REST bodies: JSON and the binary tensor extension, both directions."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from predictor.protocol.v2_codec import V2Request, decode_request, encode_response, parse_body
from predictor.protocol.validation import InputError

FP32 = np.dtype("float32")


def _decode(document: dict[str, Any], binary: bytes | None = None) -> V2Request:
    return decode_request(document, None if binary is None else memoryview(binary))


def _error(document: Any, binary: bytes | None = None) -> str:
    with pytest.raises(InputError) as info:
        _decode(document, binary)
    return str(info.value)


def _binary_body(document: dict[str, Any], *arrays: np.ndarray) -> tuple[bytes, str]:
    header = json.dumps(document).encode()
    return header + b"".join(a.astype(a.dtype.newbyteorder("<")).tobytes() for a in arrays), str(len(header))


def _tensor(name: Any, datatype: str, shape: Any, **fields: Any) -> dict[str, Any]:
    """A request tensor; name and shape take any JSON value so malformed ones can be built too."""
    return {"name": name, "datatype": datatype, "shape": shape, **fields}


# ---- parse_body -----------------------------------------------------------------------------------


def test_json_body_parses_without_binary_part() -> None:
    document, rest = parse_body(b'{"inputs": [], "id": "r1"}', None)
    assert document == {"inputs": [], "id": "r1"}
    assert rest is None


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"inputs": [1, 2}', b"\xff\xfe"])
def test_malformed_json(body: bytes) -> None:
    with pytest.raises(InputError, match=r"^the body is not valid JSON: "):
        parse_body(body, None)


@pytest.mark.parametrize(("body", "kind"), [(b"[1, 2]", "list"), (b'"inputs"', "str"), (b"42", "int")])
def test_body_must_be_an_object(body: bytes, kind: str) -> None:
    with pytest.raises(InputError) as info:
        parse_body(body, None)
    assert str(info.value) == f"the body must be a JSON object with 'inputs', got {kind}"


@pytest.mark.parametrize("length", ["abc", "1.5", ""])
def test_header_length_must_be_an_integer(length: str) -> None:
    with pytest.raises(InputError) as info:
        parse_body(b"{}", length)
    assert str(info.value) == f"Inference-Header-Content-Length must be an integer, got {length!r}"


@pytest.mark.parametrize("length", ["0", "-1", "3"])
def test_header_length_must_fit_the_body(length: str) -> None:
    with pytest.raises(InputError) as info:
        parse_body(b"{}", length)
    assert str(info.value) == f"Inference-Header-Content-Length is {length}, but the body has 2 bytes"


def test_header_length_splits_json_from_binary() -> None:
    document, rest = parse_body(b'{"inputs": []}\x01\x02\x03', "14")
    assert document == {"inputs": []}
    assert rest is not None
    assert bytes(rest) == b"\x01\x02\x03"


# ---- decode_request: JSON -------------------------------------------------------------------------


def test_json_request_decodes_tensors_and_request_fields() -> None:
    request = _decode(
        {
            "id": "req-7",
            "inputs": [_tensor("features", "FP32", [2, 2], data=[1, 2, 3, 4])],
            "outputs": [{"name": "label"}, {"name": "probabilities", "parameters": {"binary_data": True}}],
            "parameters": {"binary_data_output": True},
        }
    )
    assert request.request_id == "req-7"
    assert request.requested_outputs == ["label", "probabilities"]
    assert request.binary_outputs == {"probabilities"}
    assert request.binary_default is True
    (tensor,) = request.tensors
    assert (tensor.name, tensor.datatype, list(tensor.shape)) == ("features", "FP32", [2, 2])
    np.testing.assert_array_equal(tensor.decode(FP32), np.array([[1, 2], [3, 4]], dtype=np.float32))


def test_optional_fields_default() -> None:
    request = _decode({"id": 12, "inputs": [_tensor("x", "INT64", [1], data=[3])]})
    assert request.request_id is None  # a non-string id is not echoed back as if it were one
    assert request.requested_outputs == []
    assert request.binary_outputs == set()
    assert request.binary_default is False


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "'inputs' must be a list of tensors, got NoneType"),
        ({"inputs": {"name": "x"}}, "'inputs' must be a list of tensors, got dict"),
        ({"inputs": ["x"]}, "inputs[0]: expected an object, got str"),
        ({"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]}, "inputs[0]: missing 'name'"),
        ({"inputs": [{"name": "x", "shape": [1], "data": [1]}]}, "inputs[0]: missing 'datatype'"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "data": [1]}]}, "inputs[0]: missing 'shape'"),
        ({"inputs": [_tensor("x", "FP32", [1])]}, "inputs[0]: missing 'data'"),
        ({"inputs": [_tensor("x", "FP32", "1", data=[1])]}, "inputs[0].shape: expected list, got '1'"),
        ({"inputs": [_tensor(7, "FP32", [1], data=[1])]}, "inputs[0].name: expected str, got 7"),
        ({"inputs": [_tensor("x", "FP32", [1], data=1.0)]}, "inputs[0].data: expected list, got 1.0"),
        ({"inputs": [_tensor("x", "FP33", [1], data=[1])]}, "input 'x': unknown datatype 'FP33'; expected one of"),
        ({"inputs": [], "outputs": "label"}, "'outputs' must be a list of objects with a 'name'"),
        ({"inputs": [], "outputs": [{"nom": "label"}]}, "'outputs' must be a list of objects with a 'name'"),
    ],
)
def test_malformed_request_is_refused_precisely(document: dict[str, Any], message: str) -> None:
    assert _error(document).startswith(message)


@pytest.mark.parametrize("parameters", [[1], "binary", 5])
def test_non_object_input_parameters_are_an_input_error(parameters: Any) -> None:
    # A client bug, so 400 naming the input: not an AttributeError answered as 500.
    message = _error({"inputs": [_tensor("x", "FP32", [1], data=[1.0], parameters=parameters)]})
    assert "parameters" in message


@pytest.mark.parametrize("parameters", [[1], "binary", 5])
def test_non_object_output_parameters_are_an_input_error(parameters: Any) -> None:
    message = _error(
        {"inputs": [_tensor("x", "FP32", [1], data=[1.0])], "outputs": [{"name": "y", "parameters": parameters}]}
    )
    assert "parameters" in message


# ---- decode_request: binary extension -------------------------------------------------------------


def test_binary_tensor_is_decoded_from_the_bytes_after_the_header() -> None:
    values = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]], dtype=np.float32)
    body, length = _binary_body(
        {"inputs": [_tensor("features", "FP32", [2, 4], parameters={"binary_data_size": values.nbytes})]}, values
    )
    document, rest = parse_body(body, length)
    (tensor,) = decode_request(document, rest).tensors

    array = tensor.decode(FP32)
    assert array.shape == (2, 4)
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, values)


def test_binary_and_json_inputs_mix_and_binary_parts_follow_input_order() -> None:
    ids = np.array([7, 8, 9], dtype=np.int64)
    pixels = np.arange(6, dtype=np.float32)
    document = {
        "inputs": [
            _tensor("ids", "INT64", [3], parameters={"binary_data_size": ids.nbytes}),
            _tensor("note", "FP64", [1], data=[0.5]),
            _tensor("pixels", "FP32", [3, 2], parameters={"binary_data_size": pixels.nbytes}),
        ]
    }
    body, length = _binary_body(document, ids, pixels)
    tensors = decode_request(*parse_body(body, length)).tensors

    decoded = {
        t.name: t.decode(np.dtype({"ids": "int64", "note": "float64", "pixels": "float32"}[t.name])) for t in tensors
    }
    np.testing.assert_array_equal(decoded["ids"], [7, 8, 9])
    np.testing.assert_array_equal(decoded["note"], [0.5])
    np.testing.assert_array_equal(decoded["pixels"], [[0, 1], [2, 3], [4, 5]])


def test_binary_size_that_does_not_match_the_shape() -> None:
    values = np.zeros(3, dtype=np.float32)
    document = {"inputs": [_tensor("x", "FP32", [1, 4], parameters={"binary_data_size": 12})]}
    (tensor,) = _decode(document, values.tobytes()).tensors
    with pytest.raises(InputError) as info:
        tensor.decode(FP32)
    assert str(info.value) == "input 'x': shape [1, 4] needs 16 bytes, binary_data_size is 12"


@pytest.mark.parametrize(
    ("size", "binary"),
    [(32, b"\x00" * 16), ("16", b"\x00" * 16), (16, None)],
    ids=["past-the-end", "not-an-int", "no-binary-part"],
)
def test_binary_size_that_does_not_fit_the_body(size: Any, binary: bytes | None) -> None:
    message = _error({"inputs": [_tensor("x", "FP32", [4], parameters={"binary_data_size": size})]}, binary)
    assert message == f"input 'x': binary_data_size {size!r} does not fit the binary part of the body"


def test_negative_binary_size_is_refused() -> None:
    # -4 and 20 add up to the 16 bytes sent, so the leftover check alone does not catch it.
    document = {
        "inputs": [
            _tensor("a", "FP32", [3], parameters={"binary_data_size": -4}),
            _tensor("b", "FP32", [1], parameters={"binary_data_size": 20}),
        ]
    }
    message = _error(document, np.arange(4, dtype="<f4").tobytes())
    assert "binary_data_size -4" in message


def test_leftover_binary_bytes_are_refused() -> None:
    document = {"inputs": [_tensor("x", "FP32", [2], parameters={"binary_data_size": 8})]}
    message = _error(document, b"\x00" * 12)
    assert message == "4 bytes of binary data are not claimed by any input"


def test_binary_bytes_tensors_are_refused() -> None:
    document = {"inputs": [_tensor("s", "BYTES", [1], parameters={"binary_data_size": 5})]}
    (tensor,) = _decode(document, b"\x01\x00\x00\x00a").tensors
    with pytest.raises(InputError, match="BYTES tensors in binary form are not supported"):
        tensor.decode(np.dtype(object))


# ---- encode_response ------------------------------------------------------------------------------


def test_json_response_parses_back_to_the_same_values() -> None:
    probabilities = np.array([[0.25, 0.5, 0.25], [0.125, 0.125, 0.75]], dtype=np.float32)
    labels = np.array([1, 2], dtype=np.int64)

    body, header_length = encode_response(
        "iris", "3", "req-1", [("label", "INT64", labels), ("probabilities", "FP32", probabilities)], set()
    )

    assert header_length is None
    assert json.loads(body) == {
        "model_name": "iris",
        "model_version": "3",
        "id": "req-1",
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [2], "data": [1, 2]},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [2, 3],
                "data": [0.25, 0.5, 0.25, 0.125, 0.125, 0.75],
            },
        ],
    }


def test_json_response_flattens_in_row_major_order_even_for_views() -> None:
    array = np.arange(6, dtype=np.int32).reshape(2, 3).T  # not C-contiguous
    body, _ = encode_response("m", "1", "r", [("y", "INT32", array)], set())
    (output,) = json.loads(body)["outputs"]
    assert output["shape"] == [3, 2]
    assert output["data"] == [0, 3, 1, 4, 2, 5]


def test_json_response_values_of_other_datatypes() -> None:
    outputs = [
        ("flags", "BOOL", np.array([True, False])),
        ("half", "FP16", np.array([1.5, -2.0], dtype=np.float16)),
        ("text", "BYTES", np.array([b"caf\xc3\xa9", "plain"], dtype=object)),
    ]
    body, _ = encode_response("m", "1", "r", outputs, set())
    data = {o["name"]: o["data"] for o in json.loads(body)["outputs"]}
    assert data == {"flags": [True, False], "half": [1.5, -2.0], "text": ["café", "plain"]}


def test_binary_outputs_split_by_the_returned_header_length() -> None:
    probabilities = np.array([[0.1, 0.9], [0.7, 0.3]], dtype=np.float32)
    labels = np.array([1, 0], dtype=np.int64)
    scores = np.array([3.5, -1.25], dtype=np.float64)

    body, header_length = encode_response(
        "m",
        "1",
        "r",
        [("label", "INT64", labels), ("probabilities", "FP32", probabilities), ("score", "FP64", scores)],
        {"probabilities", "label"},
    )

    assert header_length is not None
    header = json.loads(body[:header_length])
    label_out, proba_out, score_out = header["outputs"]
    assert label_out["parameters"] == {"binary_data_size": 16}
    assert proba_out["parameters"] == {"binary_data_size": 16}
    assert "data" not in label_out
    assert "data" not in proba_out
    assert score_out["data"] == [3.5, -1.25]  # not asked for in binary: stays JSON
    assert proba_out["shape"] == [2, 2]
    rest = body[header_length:]
    assert len(rest) == 32
    np.testing.assert_array_equal(np.frombuffer(rest[:16], dtype="<i8"), labels)  # in output order
    np.testing.assert_array_equal(np.frombuffer(rest[16:], dtype="<f4").reshape(proba_out["shape"]), probabilities)


def test_binary_bytes_output_falls_back_to_json() -> None:
    body, header_length = encode_response("m", "1", "r", [("t", "BYTES", np.array(["a"], dtype=object))], {"t"})
    assert header_length is None
    assert json.loads(body)["outputs"][0]["data"] == ["a"]


def test_binary_output_is_little_endian_whatever_the_array_order() -> None:
    big = np.array([1.0, 2.0], dtype=">f8")
    body, header_length = encode_response("m", "1", "r", [("y", "FP64", big)], {"y"})
    assert header_length is not None
    np.testing.assert_array_equal(np.frombuffer(body[header_length:], dtype="<f8"), [1.0, 2.0])
