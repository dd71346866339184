"""Check request tensors against the model's declared inputs.

Every check answers with an :class:`InputError` whose message names the input, what arrived and
what was expected, so a client can fix its request without reading server logs. Pure: numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictor.modeldir.spec import DATATYPE_TO_NUMPY, ModelSpec, TensorSpec


class InputError(ValueError):
    """The request does not match the model's declared inputs (answered as 400 / INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class RawTensor:
    """One input tensor as it arrived, before it is trusted.

    ``decode`` turns the payload into a numpy array of the declared dtype; it is a callable so
    each transport (JSON lists, gRPC typed contents, binary extension) keeps its own decoding.
    """

    name: str
    datatype: str
    shape: Sequence[Any]
    decode: Callable[[np.dtype[Any]], np.ndarray]


def describe(tensor: TensorSpec) -> str:
    return f"{tensor.name!r} ({tensor.datatype}, shape {tensor.shape})"


def check_shape(tensor: TensorSpec, shape: Sequence[Any]) -> tuple[int, ...]:
    """The request's shape as ints, if it fits the declared one (-1 matches any size >= 1)."""
    if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise InputError(f"input {tensor.name!r}: shape must be a list of integers, got {shape!r}")
    if len(shape) != len(tensor.shape):
        raise InputError(
            f"input {tensor.name!r}: shape {list(shape)} has {len(shape)} dimensions, "
            f"expected {len(tensor.shape)} like {tensor.shape}"
        )
    if shape[0] == 0:
        raise InputError(f"input {tensor.name!r}: empty batch (shape {list(shape)}); send at least one row")
    for axis, (got, want) in enumerate(zip(shape, tensor.shape, strict=True)):
        if got < 1 or (want != -1 and got != want):
            expected = "a positive size" if want == -1 else str(want)
            raise InputError(
                f"input {tensor.name!r}: dimension {axis} is {got}, expected {expected} (declared shape {tensor.shape})"
            )
    return tuple(shape)


def check_values(tensor: TensorSpec, array: np.ndarray) -> None:
    """Refuse NaN and infinities unless the input allows them: models answer garbage, not errors."""
    if tensor.allow_nan or array.dtype.kind != "f":
        return
    if np.isfinite(array).all():
        return
    bad = int(np.count_nonzero(~np.isfinite(array)))
    raise InputError(f"input {tensor.name!r}: {bad} value(s) are NaN or infinite; this input does not allow them")


# Which JSON value kinds (numpy kinds after np.asarray) each target kind takes without losing anything:
# integers and floats for FP*, integers only for (U)INT*, booleans only for BOOL.
_ACCEPTED_KINDS = {"f": "fiu", "i": "iu", "u": "iu", "b": "b"}
_KIND_NAMES = {"f": "numbers", "i": "integers", "u": "non-negative integers", "b": "booleans"}


def json_decoder(data: Any, shape: Sequence[int], name: str) -> Callable[[np.dtype[Any]], np.ndarray]:
    """Decode a JSON ``data`` field (flat row-major or nested lists) into an array of ``shape``.

    ``shape`` is the request's; ``validate_inputs`` checks it before it calls the decoder.

    Values must fit the datatype exactly: 1.5 is not an INT64, "5.1" is not an FP32, 300 is not a
    UINT8. numpy would silently truncate, parse or raise OverflowError (a 500) for each of these.
    """

    def decode(dtype: np.dtype[Any]) -> np.ndarray:
        if not isinstance(data, list):
            raise InputError(f"input {name!r}: data must be a list, got {type(data).__name__}")
        array = _exact_array(data, dtype, name)
        expected = math.prod(shape)
        if array.size != expected:
            raise InputError(f"input {name!r}: shape {list(shape)} needs {expected} elements, got {array.size}")
        return array.reshape(tuple(shape))

    return decode


def _exact_array(data: list[Any], dtype: np.dtype[Any], name: str) -> np.ndarray:
    if dtype.kind == "O":  # BYTES: strings stay Python objects
        return np.asarray(data, dtype=object)
    try:
        raw = np.asarray(data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"input {name!r}: data is not a rectangular list of numbers: {exc}") from None
    if raw.size == 0:
        return raw.astype(dtype)
    if raw.dtype.kind not in _ACCEPTED_KINDS[dtype.kind]:
        raise InputError(
            f"input {name!r}: datatype {dtype.name} takes {_KIND_NAMES[dtype.kind]}, got {_odd_one(data, dtype)!r}"
        )
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = int(raw.min()), int(raw.max())
        if low < info.min or high > info.max:
            raise InputError(
                f"input {name!r}: values from {low} to {high} do not fit {dtype.name} ({info.min}..{info.max})"
            )
    if dtype.kind == "f" and (raw.dtype.kind != "f" or raw.dtype.itemsize > dtype.itemsize):
        # A narrowing cast turns 1e300 into inf (FP32) and 70000 into inf (FP16) with only a warning.
        with np.errstate(over="raise"):
            try:
                return raw.astype(dtype)
            except FloatingPointError:
                largest = float(np.finfo(dtype).max)
                raise InputError(f"input {name!r}: values beyond ±{largest:g} do not fit {dtype.name}") from None
    return raw.astype(dtype, copy=False)


def _odd_one(data: list[Any], dtype: np.dtype[Any]) -> Any:
    """The first value in (nested) ``data`` that the datatype does not take, for the error message."""
    wanted: tuple[type, ...] = (bool,) if dtype.kind == "b" else (int, float) if dtype.kind == "f" else (int,)
    stack = [data]
    while stack:
        for value in stack.pop():
            if isinstance(value, list):
                stack.append(value)
            elif not isinstance(value, wanted) or (dtype.kind != "b" and isinstance(value, bool)):
                return value
    return data[0]


def check_fits_body(name: str, shape: tuple[int, ...], body_bytes: int) -> None:
    """Refuse a shape that declares more elements than the request's bytes can carry.

    Every encoding spends at least one byte per element (a JSON digit, a BOOL, a varint), so a
    bigger shape is a lie; refusing it before decoding means no decoder ever sizes a buffer from it.
    """
    elements = math.prod(shape)
    if elements > body_bytes:
        raise InputError(
            f"input {name!r}: shape {list(shape)} declares {elements} elements, "
            f"more than a request of {body_bytes} bytes can hold"
        )


def validate_inputs(
    spec: ModelSpec, tensors: Iterable[RawTensor], body_bytes: int | None = None
) -> dict[str, np.ndarray]:
    """All declared inputs, decoded and checked, in a dict keyed by name; batch sizes must agree.

    ``body_bytes`` is the size of the request (or the most it may have), for ``check_fits_body``.
    """
    arrays: dict[str, np.ndarray] = {}
    for raw in tensors:
        tensor = spec.input_named(raw.name)
        if tensor is None:
            expected = ", ".join(describe(t) for t in spec.inputs)
            raise InputError(f"unknown input {raw.name!r}; model {spec.name!r} expects {expected}")
        if raw.name in arrays:
            raise InputError(f"input {raw.name!r} appears more than once")
        if raw.datatype != tensor.datatype:
            raise InputError(
                f"input {raw.name!r}: datatype {raw.datatype!r} does not match the declared {tensor.datatype}"
            )
        shape = check_shape(tensor, raw.shape)
        if body_bytes is not None:
            check_fits_body(raw.name, shape, body_bytes)
        array = raw.decode(np.dtype(DATATYPE_TO_NUMPY[tensor.datatype]))
        if array.shape != shape:
            raise InputError(f"input {raw.name!r}: data has shape {list(array.shape)}, declared {list(shape)}")
        check_values(tensor, array)
        arrays[raw.name] = array
    if not arrays:
        expected = ", ".join(describe(t) for t in spec.inputs)
        raise InputError(f"the request has no inputs; model {spec.name!r} expects {expected}")
    missing = [describe(t) for t in spec.inputs if t.name not in arrays]
    if missing:
        raise InputError(f"missing input(s) {', '.join(missing)}")
    batch_sizes = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(batch_sizes.values())) > 1:
        raise InputError(f"inputs disagree on the batch size: {batch_sizes}")
    return arrays


def select_outputs(spec: ModelSpec, requested: Sequence[str] | None) -> list[str]:
    """Names of the outputs to return: the requested ones, or all declared when none are named."""
    declared = [o.name for o in spec.outputs]
    if not requested:
        return declared
    unknown = [name for name in requested if name not in declared]
    if unknown:
        raise InputError(f"unknown output(s) {unknown}; model {spec.name!r} has outputs {declared}")
    return list(dict.fromkeys(requested))
