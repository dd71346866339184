"""Which ONNX Runtime execution providers serve a device, and what ONNX types are in the protocol.

Pure: the lists of providers that onnxruntime offers come in as arguments, so the choice is tested
without onnxruntime, and without a GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from predictor.runtimes import RuntimeLoadError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

# onnxruntime's type strings -> Open Inference Protocol datatypes.
ONNX_TO_DATATYPE: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


@dataclass(frozen=True)
class ProviderChoice:
    """The providers to ask onnxruntime for, in order, and the device the model then runs on."""

    providers: list[Any]  # names, or (name, options) pairs as onnxruntime takes them
    device: str  # "cpu" or "cuda:N"

    @property
    def cuda_index(self) -> int | None:
        return int(self.device.split(":")[1]) if self.device.startswith("cuda:") else None


def choose_providers(requested: str, available: list[str]) -> ProviderChoice:
    """``auto``: the CUDA provider when this onnxruntime build has it, else the CPU; ``cuda[:N]``
    demands it. The CPU provider always comes last: onnxruntime places there the nodes CUDA cannot run."""
    if requested == "cpu":
        return ProviderChoice([CPU], "cpu")
    has_cuda = CUDA in available
    if requested == "auto":
        return _cuda(0) if has_cuda else ProviderChoice([CPU], "cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", requested)
    if match is None:
        raise RuntimeLoadError(f"device must be auto, cpu, cuda or cuda:N, got {requested!r}")
    if not has_cuda:
        raise RuntimeLoadError(
            f"device {requested!r} asked for, but this onnxruntime has no {CUDA} (it offers {available}); "
            "install onnxruntime-gpu in place of onnxruntime"
        )
    return _cuda(int(match.group(1) or 0))


def _cuda(index: int) -> ProviderChoice:
    return ProviderChoice([(CUDA, {"device_id": index}), CPU], f"cuda:{index}")


def confirm_providers(choice: ProviderChoice, session_providers: list[str]) -> None:
    """onnxruntime falls back to the CPU, with only a warning, when the CUDA provider cannot start
    (no driver, missing cuDNN); a model asked to run on a GPU must not quietly run elsewhere."""
    if choice.cuda_index is not None and CUDA not in session_providers:
        raise RuntimeLoadError(
            f"device {choice.device!r} asked for, but onnxruntime could not start {CUDA} "
            f"(the session runs on {session_providers}); check the CUDA and cuDNN libraries onnxruntime-gpu needs"
        )


def datatype_of(onnx_type: str, name: str) -> str:
    """The protocol datatype of a graph input or output, or a refusal naming what it is instead."""
    datatype = ONNX_TO_DATATYPE.get(onnx_type)
    if datatype is None:
        hint = (
            "; skl2onnx writes probabilities as a sequence of maps unless converted with options={'zipmap': False}"
            if onnx_type.startswith(("seq(", "map("))
            else ""
        )
        raise RuntimeLoadError(
            f"graph value {name!r} has type {onnx_type}, which is not a tensor type served here{hint}"
        )
    return datatype


def declared_dims(onnx_shape: list[Any]) -> list[int]:
    """A graph shape in the manifest's terms: symbolic or unknown dimensions become -1."""
    return [d if isinstance(d, int) and d > 0 else -1 for d in onnx_shape]
