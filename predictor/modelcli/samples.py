"""Sample inputs for a model directory: seeded rows shaped as the manifest declares."""

from __future__ import annotations

import numpy as np

from predictor.modeldir.spec import ModelSpec
from predictor.runtimes import Tensors


def sample_inputs(spec: ModelSpec, rows: int, seed: int = 0) -> Tensors:
    """``rows`` rows per input; free dimensions past the batch axis are 1, as the server's own
    start-up check makes them. Floats are standard normal, integers small and non-negative
    (they are often indices), booleans alternate."""
    rng = np.random.default_rng(seed)
    sample: Tensors = {}
    for tensor in spec.inputs:
        shape = [rows, *(1 if d == -1 else d for d in tensor.shape[1:])]
        dtype = np.dtype(tensor.numpy_dtype)
        if dtype.kind == "f":
            sample[tensor.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            sample[tensor.name] = rng.integers(0, 2, size=shape).astype(dtype)
        elif dtype.kind == "b":
            sample[tensor.name] = (np.arange(int(np.prod(shape))) % 2 == 0).reshape(shape)
        else:
            sample[tensor.name] = np.full(shape, "", dtype=object)
    return sample
