"""What the batcher queues and the checks that let requests share a model call (pure).

A request joins a batch only when its inputs' names, dtypes and per-row shapes match its
batch-mates' (``describe_rows``), and the model's outputs are split back only when every one has a
row per input row (``check_outputs``); both fail with a message that names the input or output.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Tensors = dict[str, npt.NDArray[Any]]
"""Input or output name -> array; axis 0 is the batch axis (one entry per row)."""

Signature = tuple[tuple[str, np.dtype[Any], tuple[int, ...]], ...]


class QueueFullError(Exception):
    """Too many requests are already waiting; the caller should answer 503 with ``Retry-After``.

    Raised at once instead of queueing further, because a request that would wait longer than
    the client's timeout only burns model time on an answer nobody reads.
    """

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BatcherClosedError(Exception):
    """The batcher was closed (server shutting down) before this request could run."""


class BatchOutputError(RuntimeError):
    """The model returned outputs that cannot be split back into per-request rows.

    A ``RuntimeError`` and not a ``ValueError``: it is the model's fault, not the client's, so it
    should map to a 500, not a 400.
    """


@dataclass(frozen=True)
class BatchingConfig:
    """How much to batch: the trade between added latency and fewer, larger model calls."""

    max_batch_size: int = 32
    """Most rows (not requests) in one merged model call; a single larger request runs alone."""
    max_latency_ms: float = 2.0
    """Longest the oldest request of a batch waits for batch-mates, counted from its arrival."""
    max_queue_size: int = 1024
    """Most requests (not rows) waiting to run before submit() refuses with QueueFullError."""

    def __post_init__(self) -> None:
        """Fail at startup, naming the bad setting, rather than misbehave under load."""
        _require_int("max_batch_size", self.max_batch_size, minimum=1)
        _require_int("max_queue_size", self.max_queue_size, minimum=1)
        latency = self.max_latency_ms
        if (
            isinstance(latency, bool)
            or not isinstance(latency, int | float)
            or not math.isfinite(latency)
            or latency < 0
        ):
            raise ValueError(f"max_latency_ms must be a finite number >= 0, got {latency!r}")


def _require_int(field: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{field} must be an integer >= {minimum}, got {value!r}")


@dataclass(slots=True, eq=False)
class QueuedRequest:
    """One submit() call: its inputs, its batch-compatibility key and the future its caller awaits."""

    inputs: Tensors
    rows: int
    signature: Signature
    future: asyncio.Future[Tensors]
    enqueued_at: float
    waiting: bool = True  # counted in queue_depth until it starts, is cancelled or is failed
    # When given (tracing), the batcher writes the wall-clock ns its model call started and ended.
    model_call_ns: list[int] | None = None


def describe_rows(inputs: Tensors) -> tuple[int, Signature]:
    """Row count and compatibility key of a request; ValueError (a 400) if it cannot be batched.

    Requests merge only when names, dtypes and per-row shapes all match, so that np.concatenate
    neither fails nor silently upcasts one caller's data.
    """
    if not isinstance(inputs, dict) or not inputs:
        raise ValueError(f"inputs must be a non-empty dict of name -> array, got {type(inputs).__name__}")
    rows = -1
    parts = []
    for name, array in inputs.items():
        if not isinstance(array, np.ndarray) or array.ndim == 0:
            kind = "a 0-d array" if isinstance(array, np.ndarray) else type(array).__name__
            raise ValueError(f"input {name!r} must be an array with a batch axis (axis 0), got {kind}")
        if rows >= 0 and array.shape[0] != rows:
            raise ValueError(
                f"all inputs must have the same number of rows (axis 0); input {name!r} has "
                f"{array.shape[0]}, the inputs before it have {rows}"
            )
        rows = array.shape[0]
        parts.append((name, array.dtype, array.shape[1:]))
    if len(parts) > 1:
        parts.sort(key=lambda part: part[0])  # input order must not matter, names are unique
    return rows, tuple(parts)


def check_outputs(outputs: object, rows: int) -> Tensors:
    """The model's outputs, if every one has exactly one entry per input row along axis 0.

    Without that the rows cannot be handed back to their callers, and a wrong split would give a
    client someone else's predictions, so it is an error, never a guess.
    """
    if not isinstance(outputs, dict):
        raise BatchOutputError(f"run_batch must return a dict of name -> array, got {type(outputs).__name__}")
    for name, array in outputs.items():
        if not isinstance(array, np.ndarray):
            raise BatchOutputError(f"output {name!r} must be a numpy array, got {type(array).__name__}")
        if array.ndim == 0:
            raise BatchOutputError(
                f"output {name!r} has no batch axis (shape ()); every output needs one row per input row"
            )
        if array.shape[0] != rows:
            raise BatchOutputError(
                f"output {name!r} has {array.shape[0]} rows along axis 0 but the batch had {rows} input "
                f"rows; every output needs exactly one row per input row"
            )
    return outputs


def settle(future: asyncio.Future[Tensors], outputs: Tensors) -> None:
    if not future.done():  # a caller that went away has a cancelled future: drop its rows
        future.set_result(outputs)


def settle_error(future: asyncio.Future[Tensors], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
