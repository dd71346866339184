"""A scikit-learn-shaped estimator whose predict takes a while: proves the event loop stays free.

The server unpickles it, so it lives in an importable module (the test server's PYTHONPATH).
"""

from __future__ import annotations

import time

import numpy as np


class SlowEstimator:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def predict(self, features: np.ndarray) -> np.ndarray:
        if len(features) > 1 or features.any():  # the start-up sample row (zeros) stays fast
            time.sleep(self.seconds)
        return np.zeros(len(features), dtype=np.int64)
