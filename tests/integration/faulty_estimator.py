"""A scikit-learn-shaped estimator that fails or dawdles on purpose: a bad canary, for real.

Served by the real predictor (it unpickles it, so it lives in an importable module on the test
server's PYTHONPATH). ``fail=True`` raises on every request, which the predictor answers with HTTP
500; ``seconds`` sleeps in each call; ``label`` is the class it predicts for every row (a model
whose predictions shifted). The start-up sample row (zeros) stays fast and fine, so the server
comes up like any other.
"""

from __future__ import annotations

import time

import numpy as np


class FaultyEstimator:
    def __init__(self, fail: bool = False, seconds: float = 0.0, label: int = 0) -> None:
        self.fail = fail
        self.seconds = seconds
        self.label = label

    def predict(self, features: np.ndarray) -> np.ndarray:
        if len(features) > 1 or features.any():
            if self.seconds:
                time.sleep(self.seconds)
            if self.fail:
                raise RuntimeError("injected canary failure")
        return np.full(len(features), self.label, dtype=np.int64)
