"""ONNX Runtime: ``.onnx`` graphs on the CPU, or on a GPU through the CUDA execution provider.

An ONNX graph names its own inputs and outputs; the manifest declares them (``servekit-model
pack`` reads them from the graph) and the load checks both agree. On CUDA, inputs and outputs go
through an I/O binding: inputs are copied to the device once per batch, outputs are allocated
there by onnxruntime and copied back once, instead of onnxruntime staging each through its own
host buffers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from predictor.modeldir.artifacts import verified_artifact_path
from predictor.modeldir.spec import DATATYPE_TO_NUMPY, ModelSpec, TensorSpec
from predictor.runtimes import RuntimeLoadError, Tensors, load_failure
from predictor.runtimes.onnx_providers import (
    ProviderChoice,
    choose_providers,
    confirm_providers,
    datatype_of,
    declared_dims,
)
from predictor.runtimes.signatures import check_declared

logger = logging.getLogger(__name__)


class OnnxRuntime:
    """One inference session; ``predict`` returns the declared graph outputs."""

    def __init__(self, session: ort.InferenceSession, spec: ModelSpec, choice: ProviderChoice) -> None:
        self._session = session
        self._choice = choice
        self._inputs = [t.name for t in spec.inputs]
        self._outputs = [(o.name, np.dtype(DATATYPE_TO_NUMPY[o.datatype])) for o in spec.outputs]
        self._names = [name for name, _ in self._outputs]

    @property
    def device(self) -> str:
        return self._choice.device

    def predict(self, inputs: Tensors) -> Tensors:
        feeds = {name: np.ascontiguousarray(inputs[name]) for name in self._inputs}
        if self._choice.cuda_index is None:
            values = self._session.run(self._names, feeds)
        else:
            values = self._run_bound(feeds, self._choice.cuda_index)
        return {
            name: np.asarray(value).astype(dtype, copy=False)
            for (name, dtype), value in zip(self._outputs, values, strict=True)
        }

    def _run_bound(self, feeds: Tensors, index: int) -> list[Any]:
        binding = self._session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, array)
        for name in self._names:
            binding.bind_output(name, "cuda", index)
        self._session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())


def check_signature(declared: list[TensorSpec], graph: list[Any], kind: str) -> None:
    """The manifest's tensors against the graph's (onnxruntime's NodeArg list)."""
    model = {node.name: (datatype_of(node.type, node.name), declared_dims(list(node.shape))) for node in graph}
    check_declared(declared, model, kind, "graph")


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return options


def load(spec: ModelSpec, model_dir: Path, device: str | None, max_batch_size: int = 32) -> OnnxRuntime:
    """``max_batch_size`` is not needed here: any batch size runs as it comes."""
    path = verified_artifact_path(model_dir, spec.artifact)
    choice = choose_providers(device or spec.runtime.device, ort.get_available_providers())
    try:
        session = ort.InferenceSession(
            str(path), sess_options=session_options(spec.runtime.threads), providers=choice.providers
        )
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / InvalidProtobuf
        raise RuntimeLoadError(f"cannot load ONNX artifact {str(path)!r}: {load_failure(exc)}") from None
    confirm_providers(choice, session.get_providers())
    check_signature(list(spec.inputs), session.get_inputs(), "input")
    check_signature(list(spec.outputs), session.get_outputs(), "output")
    if spec.runtime.half_precision:
        logger.info("half_precision is ignored for ONNX models: convert the graph to float16 instead")
    logger.info("onnx model %s loaded on %s (providers %s)", spec.name, choice.device, session.get_providers())
    return OnnxRuntime(session, spec, choice)
