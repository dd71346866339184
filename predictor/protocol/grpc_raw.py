"""gRPC answers as other v2 clients expect them: every output's bytes in ``raw_output_contents``.

Triton answers ``ModelInfer`` with every output's bytes in ``raw_output_contents`` and no typed
``contents``; common v2 clients (tritonclient among them) read only that form and see empty arrays
otherwise. KServe's ``InferResponse.to_grpc`` fills ``contents``. Raw bytes are also the cheaper
encoding: one memcpy per output instead of a protobuf repeated field.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import numpy as np
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb


def raw_contents(array: np.ndarray, datatype: str) -> bytes:
    """A tensor's bytes as the v2 protocol lays them out: row-major, little-endian; BYTES elements
    each as a 4-byte little-endian length and the bytes (text as UTF-8)."""
    if datatype != "BYTES":
        return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    parts = []
    for element in array.ravel().tolist():
        data = element if isinstance(element, bytes) else str(element).encode()
        parts.append(struct.pack("<I", len(data)) + data)
    return b"".join(parts)


def grpc_infer_response(
    model_name: str, model_version: str, response_id: str, outputs: Iterable[tuple[str, str, np.ndarray]]
) -> pb.ModelInferResponse:
    """``ModelInferResponse`` with outputs (name, datatype, array) in ``raw_output_contents``."""
    tensors = []
    raw = []
    for name, datatype, array in outputs:
        tensors.append(pb.ModelInferResponse.InferOutputTensor(name=name, datatype=datatype, shape=array.shape))
        raw.append(raw_contents(array, datatype))
    return pb.ModelInferResponse(
        model_name=model_name, model_version=model_version, id=response_id, outputs=tensors, raw_output_contents=raw
    )
