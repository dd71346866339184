"""A scikit-learn-shaped estimator whose predict takes a while: proves the event loop stays free.

The server unpickles it, so it lives in an importable module (the test server's PYTHONPATH). With
``started_dir`` it signals each slow call as it begins (tests/support/started.py).
"""

from __future__ import annotations

import time

import numpy as np

from tests.support.started import signal_started


class SlowEstimator:
    def __init__(self, seconds: float, started_dir: str | None = None) -> None:
        self.seconds = seconds
        self.started_dir = started_dir

    def predict(self, features: np.ndarray) -> np.ndarray:
        if len(features) > 1 or features.any():  # the start-up sample row (zeros) stays fast
            signal_started(self.started_dir)
            time.sleep(self.seconds)
        return np.zeros(len(features), dtype=np.int64)
