"""CUDA graphs for torch models: one capture per batch-size bucket, taken when the model loads.

A small model on a GPU spends most of a batch launching kernels one by one from Python; a CUDA
graph replays the whole forward pass with one launch. A graph runs only at the shapes it was
captured with, so the runtime captures one per bucket (1, 2, 4, ... up to the largest batch the
batcher forms), copies a batch into the smallest bucket that holds it, and slices the real rows
out of the outputs. A batch larger than the largest bucket runs as several chunks.

The rows past a batch's end in a bucket hold whatever an earlier batch left there (zeros at
first): real, finite inputs whose outputs are never returned. That is right for any model whose
rows do not mix (classifiers, embedders), which is what the opt-in ``runtime.cuda_graphs`` asks
the model's owner to vouch for. Nothing is captured or compiled on a request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

Compute = Callable[..., dict[str, torch.Tensor]]
"""The on-device forward pass: input tensors in, output tensors by name out."""
Replay = Callable[[], None]
Capture = Callable[[Compute, list[torch.Tensor]], tuple[Replay, dict[str, torch.Tensor]]]
"""Records ``compute`` on fixed input buffers; returns how to re-run it and its output buffers."""

# Runs before a capture, on a side stream, as torch's docs ask: lazy initialisation (cuBLAS
# handles and workspaces, autotuning) must not land inside the graph.
WARMUP_RUNS = 3


@dataclass(frozen=True)
class Chunk:
    """Rows ``start:stop`` of a batch, run in the graph captured for ``bucket`` rows."""

    start: int
    stop: int
    bucket: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


def batch_buckets(max_rows: int) -> list[int]:
    """Powers of two below ``max_rows``, then ``max_rows`` itself: at most half of a bucket is padding."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    buckets = []
    size = 1
    while size < max_rows:
        buckets.append(size)
        size *= 2
    buckets.append(max_rows)
    return buckets


def plan_chunks(rows: int, buckets: Sequence[int]) -> list[Chunk]:
    """How a batch of ``rows`` runs: full chunks of the largest bucket, then the rest padded up to
    the smallest bucket that holds it. ``buckets`` must be sorted ascending."""
    if rows < 1:
        raise ValueError(f"a batch has at least one row, got {rows}")
    largest = buckets[-1]
    chunks = []
    start = 0
    while rows - start > largest:
        chunks.append(Chunk(start, start + largest, largest))
        start += largest
    rest = rows - start
    chunks.append(Chunk(start, rows, next(b for b in buckets if b >= rest)))
    return chunks


@dataclass
class _Slot:
    inputs: list[torch.Tensor]
    outputs: dict[str, torch.Tensor]
    replay: Replay


def host_tensor(array: np.ndarray) -> torch.Tensor:
    """A numpy array as a CPU tensor, without a copy where torch allows it."""
    if not array.flags.writeable:  # binary-extension inputs are read-only views of the request body
        array = array.copy()
    return torch.from_numpy(np.ascontiguousarray(array))


class BucketedGraphs:
    """``compute`` captured once per bucket on fixed buffers, run on batches of any size.

    ``layouts`` gives each input's row shape (without the batch axis) and dtype, in the order
    ``compute`` takes them. One batch at a time: the buffers are shared, so a lock guards them.
    """

    def __init__(
        self,
        compute: Compute,
        layouts: Sequence[tuple[tuple[int, ...], torch.dtype]],
        buckets: Sequence[int],
        device: torch.device,
        capture: Capture,
    ) -> None:
        self.buckets = sorted(buckets)
        self._slots: dict[int, _Slot] = {}
        # Largest first: the smaller graphs then fit in the memory the largest one's pool reserved.
        for bucket in reversed(self.buckets):
            inputs = [torch.zeros((bucket, *shape), dtype=dtype, device=device) for shape, dtype in layouts]
            replay, outputs = capture(compute, inputs)
            self._slots[bucket] = _Slot(inputs, outputs, replay)
        self._lock = threading.Lock()

    def run(self, arrays: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs for every row of ``arrays`` (all with the same number of rows)."""
        parts: list[dict[str, np.ndarray]] = []
        with self._lock:
            for chunk in plan_chunks(arrays[0].shape[0], self.buckets):
                slot = self._slots[chunk.bucket]
                for buffer, array in zip(slot.inputs, arrays, strict=True):
                    buffer[: chunk.rows].copy_(host_tensor(array[chunk.start : chunk.stop]))
                slot.replay()
                # A copy off the buffers: the next batch overwrites them.
                parts.append(
                    {name: out[: chunk.rows].to("cpu", copy=True).numpy() for name, out in slot.outputs.items()}
                )
        if len(parts) == 1:
            return parts[0]
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def cuda_graph_capture(device: torch.device) -> Capture:
    """Capture with real CUDA graphs; all of them share one memory pool."""
    pool = torch.cuda.graph_pool_handle()

    def capture(compute: Compute, inputs: list[torch.Tensor]) -> tuple[Replay, dict[str, torch.Tensor]]:
        with torch.cuda.device(device):
            side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_RUNS):
                    compute(*inputs)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                outputs = compute(*inputs)
        return graph.replay, outputs

    return capture
