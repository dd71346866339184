"""Turn v1 ``instances`` into the declared input, and apply the manifest's feature transforms.

v1 clients send rows as lists (``[[5.1, 3.5, 1.4, 0.2]]``) or as objects keyed by feature name
(``[{"sepal_length": 5.1, ...}]``); both become one array that the v2 checks then vet. The
transforms (scaling, casts) run once per merged batch, just before the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from predictor.modeldir.spec import DATATYPE_TO_NUMPY, ModelSpec
from predictor.protocol.validation import InputError, RawTensor, json_decoder


def instances_to_tensor(spec: ModelSpec, instances: Any) -> RawTensor:
    """v1 ``instances`` as a raw tensor for the single declared input."""
    if len(spec.inputs) != 1:
        names = [t.name for t in spec.inputs]
        raise InputError(f"v1 instances need a single-input model; model {spec.name!r} has inputs {names}: use v2")
    tensor = spec.inputs[0]
    if not isinstance(instances, list):
        raise InputError(f"'instances' must be a list of rows, got {type(instances).__name__}")
    if not instances:
        raise InputError("'instances' is empty; send at least one row")
    if all(isinstance(row, Mapping) for row in instances):
        rows: list[Any] = [_ordered_row(spec, row, i) for i, row in enumerate(instances)]
    elif any(isinstance(row, Mapping) for row in instances):
        raise InputError("'instances' mixes objects and lists; send one kind")
    else:
        rows = instances
    shape = _infer_shape(rows, tensor.name)
    return RawTensor(tensor.name, tensor.datatype, shape, json_decoder(rows, tuple(shape), tensor.name))


def _ordered_row(spec: ModelSpec, row: Mapping[str, Any], index: int) -> list[Any]:
    order = spec.preprocessing.feature_order
    if order is None:
        raise InputError(
            f"instance {index} is an object, but model {spec.name!r} declares no feature_order; send lists"
        )
    missing = [f for f in order if f not in row]
    unknown = [f for f in row if f not in order]
    if missing or unknown:
        raise InputError(f"instance {index}: missing features {missing}, unknown features {unknown}; expected {order}")
    return [row[f] for f in order]


def _infer_shape(rows: list[Any], name: str) -> list[int]:
    """Shape of nested lists, checked to be rectangular (numpy would make a ragged object array)."""
    shape = [len(rows)]
    level: list[Any] = rows
    while level and isinstance(level[0], list):
        width = len(level[0])
        if any(not isinstance(item, list) or len(item) != width for item in level):
            raise InputError(f"input {name!r}: rows have different lengths; every row needs {width} values")
        shape.append(width)
        level = [x for item in level for x in item]
    return shape


def apply_transforms(spec: ModelSpec, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Scaling and casts from the manifest, applied to a whole batch at once."""
    pre = spec.preprocessing
    if pre.scaling is None and pre.cast is None:
        return inputs
    name = spec.inputs[0].name
    array = inputs[name]
    if pre.scaling is not None:
        mean = np.asarray(pre.scaling.mean, dtype=np.float64)
        std = np.asarray(pre.scaling.std, dtype=np.float64)
        array = ((array - mean) / std).astype(array.dtype if array.dtype.kind == "f" else np.float32)
    if pre.cast is not None:
        array = array.astype(DATATYPE_TO_NUMPY[pre.cast], copy=False)
    return {**inputs, name: array}
