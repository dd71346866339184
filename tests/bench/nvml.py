"""GPU utilisation and memory from NVML (nvidia-ml-py), sampled while a load runs.

Where NVML cannot be used (no GPU, no driver, the package missing) the sampler says why once and
every run reports no GPU figures: the GPU benchmark's plumbing still runs on a CPU-only machine.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

SAMPLE_S = 0.1  # NVML's own utilisation window is 1/6 s to 1 s, depending on the GPU


@dataclass(frozen=True)
class GpuStats:
    """What the samples of one measured load say about the GPU."""

    util_mean: float  # % of time a kernel ran, averaged over the samples
    util_max: float
    memory_used_mib_max: float  # the whole device: every worker's model copy, graphs and caches
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 1) if isinstance(v, float) else v for k, v in asdict(self).items()}


def summarize(samples: Sequence[tuple[float, float]]) -> GpuStats | None:
    """(utilisation %, memory used MiB) samples as stats; None without samples."""
    if not samples:
        return None
    utils = [u for u, _ in samples]
    return GpuStats(sum(utils) / len(utils), max(utils), max(m for _, m in samples), len(samples))


class GpuSampler:
    """Samples one GPU through NVML; ``available`` is False (and ``reason`` says why) without one."""

    def __init__(self, index: int = 0) -> None:
        self.available = False
        self.reason = ""
        self.device: dict[str, Any] = {}
        try:
            import pynvml
        except ImportError:
            self.reason = "nvidia-ml-py (pynvml) is not installed"
            return
        self._nvml = pynvml
        try:
            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(self._handle)
            self.device = {
                "index": index,
                "name": _text(pynvml.nvmlDeviceGetName(self._handle)),
                "driver": _text(pynvml.nvmlSystemGetDriverVersion()),
                "memory_total_mib": round(memory.total / 2**20),
            }
        except pynvml.NVMLError as exc:
            self.reason = f"NVML: {exc}"
            return
        self.available = True

    def sample(self) -> tuple[float, float]:
        """(utilisation %, memory used MiB) right now."""
        nvml = self._nvml
        util = nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu
        used = nvml.nvmlDeviceGetMemoryInfo(self._handle).used / 2**20
        return float(util), float(used)

    @contextlib.contextmanager
    def sampling(self) -> Iterator[list[tuple[float, float]]]:
        """Samples every SAMPLE_S while the block runs, into the list it yields (empty without a GPU)."""
        samples: list[tuple[float, float]] = []
        if not self.available:
            yield samples
            return
        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                samples.append(self.sample())
                stop.wait(SAMPLE_S)

        thread = threading.Thread(target=run, name="nvml-sampler", daemon=True)
        thread.start()
        try:
            yield samples
        finally:
            stop.set()
            thread.join()

    def close(self) -> None:
        if self.available:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()

    def describe(self) -> dict[str, Any]:
        return {"available": True, **self.device} if self.available else {"available": False, "reason": self.reason}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
