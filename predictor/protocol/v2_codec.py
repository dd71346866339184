"""Open Inference Protocol (v2) REST bodies <-> tensors, JSON and the binary tensor extension.

Pure functions over bytes and dicts, used by the lean v2 route. The JSON shapes follow
``rest_predict_v2.yaml``; the binary extension puts a JSON header of
``Inference-Header-Content-Length`` bytes first, then each binary tensor's raw little-endian bytes
in input order, sized by ``parameters.binary_data_size``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from predictor.modeldir.spec import DATATYPE_TO_NUMPY
from predictor.protocol.validation import InputError, RawTensor, json_decoder

BINARY_HEADER = "inference-header-content-length"
Decoder = Callable[[np.dtype[Any]], np.ndarray]


@dataclass(frozen=True)
class V2Request:
    tensors: list[RawTensor]
    requested_outputs: list[str]
    request_id: str | None
    binary_outputs: set[str]  # outputs the client asked to receive as raw bytes
    binary_default: bool  # request-level parameters.binary_data_output


def loads_json(document: bytes | bytearray) -> Any:
    try:
        return orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"the body is not valid JSON: {exc}") from None


def parse_body(body: bytes, header_length: str | None) -> tuple[dict[str, Any], memoryview | None]:
    """The JSON document and, with the binary extension, the bytes after it."""
    if header_length is None:
        document, rest = body, None
    else:
        try:
            size = int(header_length)
        except ValueError:
            raise InputError(f"Inference-Header-Content-Length must be an integer, got {header_length!r}") from None
        if not 0 < size <= len(body):
            raise InputError(f"Inference-Header-Content-Length is {size}, but the body has {len(body)} bytes")
        document, rest = body[:size], memoryview(body)[size:]
    parsed = loads_json(document)
    if not isinstance(parsed, dict):
        raise InputError(f"the body must be a JSON object with 'inputs', got {type(parsed).__name__}")
    return parsed, rest


def _field(item: dict[str, Any], key: str, index: int, kind: type | tuple[type, ...]) -> Any:
    if key not in item:
        raise InputError(f"inputs[{index}]: missing '{key}'")
    value = item[key]
    if not isinstance(value, kind):
        raise InputError(f"inputs[{index}].{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _binary_decoder(chunk: memoryview, shape: list[Any], name: str, datatype: str) -> Decoder:
    def decode(dtype: np.dtype[Any]) -> np.ndarray:
        if datatype == "BYTES":
            raise InputError(f"input {name!r}: BYTES tensors in binary form are not supported; send them as JSON")
        expected = math.prod(shape) * dtype.itemsize
        if len(chunk) != expected:
            raise InputError(f"input {name!r}: shape {shape} needs {expected} bytes, binary_data_size is {len(chunk)}")
        return np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).reshape(shape)

    return decode


def decode_request(document: dict[str, Any], binary: memoryview | None) -> V2Request:
    """Turn a parsed v2 inference request into raw tensors; the model's schema checks come after."""
    inputs = document.get("inputs")
    if not isinstance(inputs, list):
        raise InputError(f"'inputs' must be a list of tensors, got {type(inputs).__name__}")
    tensors: list[RawTensor] = []
    offset = 0
    for index, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise InputError(f"inputs[{index}]: expected an object, got {type(item).__name__}")
        name = _field(item, "name", index, str)
        datatype = _field(item, "datatype", index, str)
        if datatype not in DATATYPE_TO_NUMPY:
            known = list(DATATYPE_TO_NUMPY)
            raise InputError(f"input {name!r}: unknown datatype {datatype!r}; expected one of {known}")
        shape = _field(item, "shape", index, list)
        size = _parameters(item, f"input {name!r}").get("binary_data_size")
        if size is not None:
            if binary is None or not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise InputError(f"input {name!r}: binary_data_size {size!r} does not fit the binary part of the body")
            chunk = binary[offset : offset + size]
            tensors.append(RawTensor(name, datatype, shape, _binary_decoder(chunk, shape, name, datatype)))
            offset += size
        else:
            data = _field(item, "data", index, list)
            tensors.append(RawTensor(name, datatype, shape, json_decoder(data, shape, name)))
    if binary is not None and offset != len(binary):
        raise InputError(f"{len(binary) - offset} bytes of binary data are not claimed by any input")
    requested, binary_outputs = _requested_outputs(document)
    return V2Request(
        tensors=tensors,
        requested_outputs=requested,
        request_id=_request_id(document),
        binary_outputs=binary_outputs,
        binary_default=bool(_parameters(document, "the request").get("binary_data_output")),
    )


def _parameters(item: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = item.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise InputError(f"{where}: 'parameters' must be an object, got {parameters!r}")
    return parameters


def _requested_outputs(document: dict[str, Any]) -> tuple[list[str], set[str]]:
    outputs = document.get("outputs")
    if outputs is None:
        return [], set()
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise InputError("'outputs' must be a list of objects with a 'name'")
    binary = {o["name"] for o in outputs if _parameters(o, f"output {o['name']!r}").get("binary_data")}
    return [o["name"] for o in outputs], binary


def _request_id(document: dict[str, Any]) -> str | None:
    value = document.get("id")
    return value if isinstance(value, str) else None


def encode_response(
    model_name: str,
    model_version: str,
    request_id: str,
    outputs: list[tuple[str, str, np.ndarray]],
    binary: set[str],
) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the JSON header's length.

    ``outputs`` holds (name, datatype, array). orjson writes numpy arrays natively, which is most
    of why this path is fast; BYTES tensors are Python strings and go through ``tolist``.
    """
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, datatype, array in outputs:
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if name in binary and datatype != "BYTES":
            raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif datatype == "BYTES":
            tensor["data"] = [_text(x) for x in array.ravel().tolist()]
        else:
            tensor["data"] = np.ascontiguousarray(array).ravel()
        tensors.append(tensor)
    document = {"model_name": model_name, "model_version": model_version, "id": request_id, "outputs": tensors}
    header = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
