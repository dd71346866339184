"""Dynamic batching: concurrent requests merged into one model call and split back (pure; no kserve).

``batcher.py`` holds the queue and its worker task; ``requests.py`` what a queued request is and the
checks on inputs and outputs that make merging safe.
"""

from predictor.batching.batcher import DynamicBatcher
from predictor.batching.requests import BatcherClosedError, BatchingConfig, BatchOutputError, QueueFullError, Tensors

__all__ = ["BatchOutputError", "BatcherClosedError", "BatchingConfig", "DynamicBatcher", "QueueFullError", "Tensors"]
