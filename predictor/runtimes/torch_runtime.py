"""PyTorch runtime: TorchScript or ``torch.export`` programs on the CPU or a CUDA device.

No pickles: TorchScript archives and exported programs load without running arbitrary Python,
and the artifact's sha256 is still checked first so the served model is the one declared.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from predictor.modeldir.artifacts import verified_artifact_path
from predictor.modeldir.preprocessing import apply_transforms
from predictor.modeldir.spec import DATATYPE_TO_NUMPY, ModelSpec
from predictor.runtimes import RuntimeLoadError, Tensors
from predictor.runtimes.cuda_graphs import BucketedGraphs, Capture, batch_buckets, cuda_graph_capture, host_tensor

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
    """Runs a loaded module under ``torch.inference_mode`` on one device, eagerly or, once
    ``capture_graphs`` ran, through CUDA graphs captured per batch-size bucket."""

    def __init__(self, module: Any, spec: ModelSpec, device: torch.device, half: bool) -> None:
        self._module = module
        self._device = device
        self._half = half
        self._inputs = [t.name for t in spec.inputs]
        self._outputs = [(o.name, o.source, np.dtype(DATATYPE_TO_NUMPY[o.datatype])) for o in spec.outputs]
        self._graphs: BucketedGraphs | None = None

    @property
    def device(self) -> str:
        return str(self._device)

    @property
    def graph_buckets(self) -> list[int]:
        """Batch sizes captured as CUDA graphs; empty when the model runs eagerly."""
        return [] if self._graphs is None else list(self._graphs.buckets)

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = host_tensor(array)
        if self._device.type == "cuda":
            # A plain copy: pinning a fresh host buffer per batch costs more than it saves.
            tensor = tensor.to(self._device)
        if self._half and tensor.is_floating_point():
            tensor = tensor.half()
        return tensor

    def compute(self, *tensors: torch.Tensor) -> dict[str, torch.Tensor]:
        """The forward pass on the device, outputs as declared; what a CUDA graph records."""
        raw = self._module(*tensors)
        if isinstance(raw, (tuple, list)):
            raw = raw[0]
        if not isinstance(raw, torch.Tensor):
            raise RuntimeError(f"the model returned {type(raw).__name__}, expected a tensor of logits/values")
        results: dict[str, torch.Tensor] = {}
        for name, source, _ in self._outputs:
            if source == "label":
                tensor = raw.argmax(dim=-1)
            elif source == "probabilities":
                tensor = torch.softmax(raw.float(), dim=-1)
            else:
                tensor = raw
            if tensor.dtype in (torch.float16, torch.bfloat16):
                tensor = tensor.float()  # numpy has no bfloat16; widen before leaving the device
            results[name] = tensor
        return results

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
        arrays = [inputs[name] for name in self._inputs]
        with torch.inference_mode():
            if self._graphs is not None:
                raw = self._graphs.run(arrays)
            else:
                raw = {name: t.cpu().numpy() for name, t in self.compute(*map(self._to_device, arrays)).items()}
        return {name: raw[name].astype(dtype, copy=False) for name, _, dtype in self._outputs}

    def capture_graphs(self, sample: Tensors, buckets: list[int], capture: Capture | None = None) -> None:
        """Capture ``compute`` once per bucket, with input buffers shaped and typed like ``sample``'s
        rows (the model's inputs after the manifest's transforms). ``capture`` defaults to CUDA graphs."""
        layouts = []
        for name in self._inputs:
            tensor = host_tensor(sample[name][:1])
            dtype = torch.float16 if self._half and tensor.is_floating_point() else tensor.dtype
            layouts.append((tuple(tensor.shape[1:]), dtype))
        with torch.inference_mode():
            self._graphs = BucketedGraphs(
                self.compute, layouts, buckets, self._device, capture or cuda_graph_capture(self._device)
            )


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


def load(spec: ModelSpec, model_dir: Path, device: str | None, max_batch_size: int = 32) -> TorchRuntime:
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
    runtime = TorchRuntime(module, spec, target, half)
    if spec.runtime.cuda_graphs:
        if target.type == "cuda":
            _capture(runtime, spec, max_batch_size)
        else:
            logger.info("cuda_graphs is ignored on %s: CUDA graphs need a CUDA device", target)
    return runtime


def _capture(runtime: TorchRuntime, spec: ModelSpec, max_batch_size: int) -> None:
    """Capture the runtime's graphs now, so no request pays for it; a capture that fails stops start-up."""
    variable = [t.name for t in spec.inputs if -1 in t.shape[1:]]
    if variable:
        raise RuntimeLoadError(
            f"cuda_graphs needs every input's shape fixed past the batch axis; {variable} have -1 there"
        )
    rows = {t.name: np.zeros([1, *t.shape[1:]], dtype=t.numpy_dtype) for t in spec.inputs}
    buckets = batch_buckets(max_batch_size)
    start = time.perf_counter()
    try:
        runtime.capture_graphs(apply_transforms(spec, rows), buckets)
    except Exception as exc:  # torch raises plain RuntimeErrors for ops a graph cannot hold
        raise RuntimeLoadError(f"cannot capture {spec.name!r} as CUDA graphs: {type(exc).__name__}: {exc}") from None
    logger.info("captured CUDA graphs for batch sizes %s in %.2f s", buckets, time.perf_counter() - start)
