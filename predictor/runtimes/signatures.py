"""A manifest's declared tensors checked against a model's own signature (an ONNX graph, a
TensorFlow SavedModel signature): same names, datatypes and compatible shapes. Pure."""

from __future__ import annotations

from predictor.modeldir.spec import TensorSpec
from predictor.runtimes import RuntimeLoadError

# name -> (protocol datatype, dims with -1 for a free dimension)
Signature = dict[str, tuple[str, list[int]]]


def check_declared(declared: list[TensorSpec], model: Signature, kind: str, where: str) -> None:
    """Every declared ``kind`` (input/output) must be one of ``model``'s, alike in datatype and in
    every dimension the model fixes; for inputs, the model's must all be declared too."""
    for tensor in declared:
        found = model.get(tensor.name)
        if found is None:
            raise RuntimeLoadError(
                f"{kind} {tensor.name!r} is declared in the manifest but the {where}'s {kind}s are {sorted(model)}"
            )
        datatype, dims = found
        if datatype != tensor.datatype:
            raise RuntimeLoadError(f"{kind} {tensor.name!r} is declared {tensor.datatype}, the {where} has {datatype}")
        clash = len(dims) != len(tensor.shape) or any(d not in (-1, t) for d, t in zip(dims, tensor.shape, strict=True))
        if clash:
            raise RuntimeLoadError(
                f"{kind} {tensor.name!r} is declared with shape {tensor.shape}, the {where} has {dims}"
            )
    if kind == "input":
        missing = sorted(set(model) - {t.name for t in declared})
        if missing:
            raise RuntimeLoadError(f"the {where} needs inputs {missing}, which the manifest does not declare")
