"""Fixtures shared by the unit tests: valid manifests to mutate, and raw tensors as a client sends them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from predictor.modeldir.spec import ModelSpec, parse_spec
from predictor.protocol.validation import RawTensor, json_decoder

SHA = "0123456789abcdef" * 4
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

_IRIS: dict[str, Any] = {
    "name": "iris",
    "framework": "sklearn",
    "artifact": {"path": "model.joblib", "sha256": SHA, "format": "joblib"},
    "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [
        {"name": "label", "datatype": "INT64", "shape": [-1], "source": "label"},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3], "source": "probabilities"},
    ],
    "labels": ["setosa", "versicolor", "virginica"],
    "preprocessing": {"feature_order": IRIS_FEATURES},
}


@pytest.fixture
def manifest() -> dict[str, Any]:
    """A fresh, valid manifest as plain data (the iris example's shape); tests mutate their own copy."""
    return copy.deepcopy(_IRIS)


@pytest.fixture
def iris_spec(manifest: dict[str, Any]) -> ModelSpec:
    return parse_spec(manifest)


@pytest.fixture
def make_spec(manifest: dict[str, Any]) -> Callable[..., ModelSpec]:
    """A spec from the iris manifest with top-level keys replaced, e.g. ``make_spec(inputs=[...])``."""

    def make(**overrides: Any) -> ModelSpec:
        return parse_spec({**manifest, **overrides})

    return make


def _raw_json(name: str, datatype: str, shape: list[Any], data: Any) -> RawTensor:
    dims = tuple(d if isinstance(d, int) else -1 for d in shape)
    return RawTensor(name, datatype, shape, json_decoder(data, dims, name))


@pytest.fixture
def raw() -> Callable[[str, str, list[Any], Any], RawTensor]:
    """Build a tensor as the v2 JSON codec does: ``raw(name, datatype, shape, data)``."""
    return _raw_json
