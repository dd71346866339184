"""The files ``check`` reads: inputs as a v2 request body, expected answers as a v2 response body.

Both are what a user already has: the body they send with ``curl`` and the answer a server gave.
A plain object of arrays (``{"features": [[...]]}``) is accepted too. Pure: text in, arrays out.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from predictor.modelcli.errors import CommandError
from predictor.modeldir.spec import DATATYPE_TO_NUMPY, ModelSpec
from predictor.protocol.validation import InputError, RawTensor, json_decoder, validate_inputs
from predictor.runtimes import Tensors


def parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{source}: not JSON: {exc}") from None


def tensors_of(body: Any, key: str, source: str) -> list[dict[str, Any]]:
    """The ``inputs`` / ``outputs`` list of a v2 body, or one made from a plain object of arrays."""
    if isinstance(body, dict) and isinstance(body.get(key), list):
        tensors: list[dict[str, Any]] = body[key]
    elif isinstance(body, dict) and body and key not in body:
        tensors = [{"name": name, "data": data} for name, data in body.items()]
    else:
        raise CommandError(f"{source}: expected a v2 body with an {key!r} list, or an object of arrays by name")
    for i, tensor in enumerate(tensors):
        if not isinstance(tensor, dict) or "name" not in tensor or "data" not in tensor:
            raise CommandError(f"{source}: {key}[{i}] needs 'name' and 'data'")
    return tensors


def read_inputs(spec: ModelSpec, body: Any, source: str) -> Tensors:
    """Inputs checked exactly as the server checks a request (names, datatypes, shapes, NaN)."""
    raw = []
    for tensor in tensors_of(body, "inputs", source):
        declared = spec.input_named(tensor["name"])
        datatype = tensor.get("datatype") or (declared.datatype if declared else "FP32")
        shape = tensor.get("shape") or list(np.shape(tensor["data"]))
        raw.append(
            RawTensor(tensor["name"], datatype, shape, json_decoder(_flat(tensor["data"]), shape, tensor["name"]))
        )
    try:
        return validate_inputs(spec, raw)
    except InputError as exc:
        raise CommandError(f"{source}: {exc}") from None


def read_expected(spec: ModelSpec, body: Any, source: str) -> Tensors:
    expected: Tensors = {}
    declared = {o.name: o for o in spec.outputs}
    for tensor in tensors_of(body, "outputs", source):
        name = tensor["name"]
        if name not in declared:
            raise CommandError(f"{source}: output {name!r} is not declared; the model's outputs are {sorted(declared)}")
        array = np.asarray(tensor["data"], dtype=DATATYPE_TO_NUMPY[declared[name].datatype])
        if "shape" in tensor:
            try:
                array = array.reshape(tensor["shape"])
            except ValueError:
                raise CommandError(
                    f"{source}: output {name!r} has {array.size} values, not shape {tensor['shape']}"
                ) from None
        expected[name] = array
    return expected


def _flat(data: Any) -> Any:
    """v2 bodies may nest their data or flatten it; the decoder takes a flat list."""
    return np.asarray(data).reshape(-1).tolist() if isinstance(data, list) else data


def differences(expected: Tensors, actual: Tensors, atol: float) -> list[str]:
    """One line per output that differs: shape, or the largest difference and its row."""
    problems = []
    for name, want in expected.items():
        got = actual[name]
        if got.shape != want.shape:
            problems.append(f"{name}: shape {list(got.shape)}, expected {list(want.shape)}")
            continue
        if want.dtype.kind in "fc":
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        else:
            diff = (got != want).astype(np.float64)
        if diff.size and float(diff.max()) > atol:
            worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
            problems.append(
                f"{name}: largest difference {float(diff.max()):.3g} at {list(map(int, worst))} "
                f"(got {got[worst].item()!r}, expected {want[worst].item()!r}; tolerance {atol:g})"
            )
    return problems
