"""PyTorch runtime: TorchScript or ``torch.export`` programs on the CPU or a CUDA device.

No pickles: TorchScript archives and exported programs load without running arbitrary Python,
and the artifact's sha256 is still checked first so the served model is the one declared.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from predictor.artifacts import verified_artifact_path
from predictor.runtimes import RuntimeLoadError, Tensors
from predictor.spec import DATATYPE_TO_NUMPY, ModelSpec

logger = logging.getLogger(__name__)


def resolve_device(requested: str) -> torch.device:
    """``auto`` means the first CUDA device when one is usable, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeLoadError(f"device {requested!r} asked for, but torch sees no CUDA device")
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise RuntimeLoadError(
                f"device {requested!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    return device


class TorchRuntime:
    """Runs a loaded module under ``torch.inference_mode`` on one device."""

    def __init__(self, module: Any, spec: ModelSpec, device: torch.device, half: bool) -> None:
        self._module = module
        self._device = device
        self._half = half
        self._inputs = [t.name for t in spec.inputs]
        self._outputs = [(o.name, o.source, np.dtype(DATATYPE_TO_NUMPY[o.datatype])) for o in spec.outputs]

    @property
    def device(self) -> str:
        return str(self._device)

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        if not array.flags.writeable:  # binary-extension inputs are views of the request body
            array = array.copy()
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if self._device.type == "cuda":
            # A plain copy: pinning a fresh host buffer per batch costs more than it saves.
            tensor = tensor.to(self._device)
        if self._half and tensor.is_floating_point():
            tensor = tensor.half()
        return tensor

    def predict(self, inputs: Tensors) -> Tensors:
        try:
            return self._predict(inputs)
        except torch.OutOfMemoryError:
            # The failed batch's blocks are free now but still cached by torch's allocator; hand
            # them back so the retries (each request alone) and other processes can use them.
            if self._device.type == "cuda":
                torch.cuda.empty_cache()
            raise

    def _predict(self, inputs: Tensors) -> Tensors:
        with torch.inference_mode():
            raw = self._module(*(self._to_device(inputs[name]) for name in self._inputs))
            if isinstance(raw, (tuple, list)):
                raw = raw[0]
            if not isinstance(raw, torch.Tensor):
                raise RuntimeError(f"the model returned {type(raw).__name__}, expected a tensor of logits/values")
            results: dict[str, torch.Tensor] = {}
            for name, source, _ in self._outputs:
                if source == "label":
                    results[name] = raw.argmax(dim=-1)
                elif source == "probabilities":
                    results[name] = torch.softmax(raw.float(), dim=-1)
                else:
                    results[name] = raw
            outputs: Tensors = {}
            for name, _, dtype in self._outputs:
                tensor = results[name]
                if tensor.dtype in (torch.float16, torch.bfloat16):
                    tensor = tensor.float()  # numpy has no bfloat16; widen before leaving the device
                outputs[name] = tensor.cpu().numpy().astype(dtype, copy=False)
            return outputs


def _load_module(path: Path, fmt: str, device: torch.device) -> Any:
    try:
        if fmt == "torchscript":
            module = torch.jit.load(str(path), map_location=device)  # type: ignore[no-untyped-call]
            module.eval()
            return module
        if fmt == "torch_export":
            program = torch.export.load(str(path))
            return program.module().to(device)
    except Exception as exc:
        raise RuntimeLoadError(f"cannot load {fmt} artifact {str(path)!r}: {type(exc).__name__}: {exc}") from None
    raise RuntimeLoadError(f"torch artifacts are 'torchscript' or 'torch_export', the manifest says {fmt!r}")


def load(spec: ModelSpec, model_dir: Path, device: str | None) -> TorchRuntime:
    path = verified_artifact_path(model_dir, spec.artifact)
    target = resolve_device(device or spec.runtime.device)
    if spec.runtime.threads:
        torch.set_num_threads(spec.runtime.threads)
    half = spec.runtime.half_precision and target.type == "cuda"
    if spec.runtime.half_precision and not half:
        logger.info("half_precision is ignored on %s: it only pays off on a GPU", target)
    # Without an explicit format, torch's own file conventions decide: .pt2 is an exported program.
    fmt = spec.artifact.format or ("torch_export" if path.suffix == ".pt2" else "torchscript")
    module = _load_module(path, fmt, target)
    if half:
        module = module.half()
    logger.info("torch model %s loaded on %s (half precision: %s)", spec.name, target, half)
    return TorchRuntime(module, spec, target, half)
