"""Request bodies more than one test module sends."""

from __future__ import annotations

from typing import Any

from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

V2 = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [6.7, 3.0, 5.2, 2.3]}]}


def infer_request() -> pb.ModelInferRequest:
    """V2's row as a gRPC ModelInfer request to the iris model."""
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="features",
        datatype="FP32",
        shape=[1, 4],
        contents=pb.InferTensorContents(fp32_contents=[6.7, 3, 5.2, 2.3]),
    )
    return pb.ModelInferRequest(model_name="iris", inputs=[tensor])


GOOD = {"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}


def with_input(**changes: Any) -> dict[str, Any]:
    return {"inputs": [{**GOOD, **changes}]}


V2_CASES = [
    ("unknown input name", with_input(name="petals"), 400, "unknown input 'petals'"),
    ("wrong datatype", with_input(datatype="INT32", data=[5, 3, 1, 0]), 400, "datatype 'INT32' does not match"),
    ("unknown datatype", with_input(datatype="FLOAT"), 400, "unknown datatype 'FLOAT'"),
    ("wrong rank", with_input(shape=[4]), 400, "expected 2 like [-1, 4]"),
    ("wrong width", with_input(shape=[1, 5], data=[1, 2, 3, 4, 5]), 400, "dimension 1 is 5, expected 4"),
    ("element count", with_input(shape=[2, 4]), 400, "needs 8 elements, got 4"),
    ("empty batch", with_input(shape=[0, 4], data=[]), 400, "empty batch"),
    ("string among numbers", with_input(data=[5.1, "NaN", 1.4, 0.2]), 400, "takes numbers, got 'NaN'"),
    ("fraction as integer", with_input(datatype="INT64", data=[5, 3.5, 1, 0]), 400, "datatype 'INT64' does not match"),
    ("strings as numbers", with_input(data=["a", "b", "c", "d"]), 400, "takes numbers, got 'a'"),
    ("no inputs", {"inputs": []}, 400, "has no inputs"),
    ("inputs not a list", {"inputs": {}}, 400, "'inputs' must be a list"),
    ("missing shape", {"inputs": [{"name": "features", "datatype": "FP32", "data": [1]}]}, 400, "missing 'shape'"),
    ("duplicate input", {"inputs": [GOOD, GOOD]}, 400, "more than once"),
    ("unknown output", {"inputs": [GOOD], "outputs": [{"name": "logits"}]}, 400, "unknown output(s) ['logits']"),
]
