"""A scikit-learn-shaped estimator with injected faults, for the fault-isolation tests.

A row holding 13 raises like a buggy model; 7 raises torch's CUDA out-of-memory error (the class
the CUDA allocator raises); 99 holds the model for ``hold_s`` so that requests queue behind it and
merge into one batch. Every other row predicts 0. The server unpickles it, so it lives in an
importable module (the test server's PYTHONPATH).
"""

from __future__ import annotations

import time

import numpy as np

from tests.support.started import signal_started

FAULT = 13.0
OUT_OF_MEMORY = 7.0
HOLD = 99.0


class InjectedFaults:
    def __init__(self, hold_s: float, started_dir: str | None = None) -> None:
        self.hold_s = hold_s
        self.started_dir = started_dir  # the hold row signals as it begins (tests/support/started.py)

    def predict(self, features: np.ndarray) -> np.ndarray:
        if (features == HOLD).any():
            signal_started(self.started_dir)
            time.sleep(self.hold_s)
        if (features == FAULT).any():
            raise RuntimeError("injected fault: a feature is 13")
        if (features == OUT_OF_MEMORY).any():
            import torch

            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")
        return np.zeros(len(features), dtype=np.int64)
