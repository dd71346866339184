"""Tests for the dynamic batcher: merging, splitting, isolation, cancellation, back-pressure.

No pytest-asyncio: each test runs its coroutine with ``asyncio.run`` through ``_run``, which also
bounds it with a timeout (nothing hangs) and fails the test if the loop reported an error such as
"Future exception was never retrieved", which is logged rather than warned and so would slip past
``filterwarnings = error``.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
import pytest

from predictor.batching import (
    BatcherClosedError,
    BatchingConfig,
    BatchOutputError,
    DynamicBatcher,
    QueueFullError,
    Tensors,
)

T = TypeVar("T")


def _run(main: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    errors: list[dict[str, Any]] = []

    async def wrapper() -> T:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))
        return await asyncio.wait_for(main(), timeout)

    result = asyncio.run(wrapper())
    gc.collect()  # unretrieved future exceptions are reported when the future is collected
    assert not errors, f"event loop reported errors: {errors}"
    return result


class Recorder:
    """A model that doubles ``x``, sums each row into ``s``, and records every call it gets."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls: list[Tensors] = []
        self.threads: list[int] = []
        self.delay_s = delay_s

    def __call__(self, inputs: Tensors) -> Tensors:
        self.calls.append(inputs)
        self.threads.append(threading.get_ident())
        if self.delay_s:
            time.sleep(self.delay_s)
        x = inputs["x"]
        return {"y": x * 2, "s": x.reshape(len(x), -1).sum(axis=1)}

    @property
    def sizes(self) -> list[int]:
        return [len(call["x"]) for call in self.calls]


class Gate:
    """A model that blocks until released, so a test can act while a batch is running."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls: list[Tensors] = []

    def __call__(self, inputs: Tensors) -> Tensors:
        self.calls.append(inputs)
        self.started.set()
        assert self.release.wait(5), "test never released the gate"
        return {"y": inputs["x"] * 2}

    async def wait_started(self) -> None:
        while not self.started.is_set():
            await asyncio.sleep(0.001)

    def seen(self) -> list[float]:
        return [float(v) for call in self.calls for v in call["x"][:, 0]]


async def until_queued(batcher: DynamicBatcher, depth: int, timeout_s: float = 2.0) -> None:
    """Until ``depth`` requests wait in the batcher: the submits a test started have reached it."""
    deadline = time.monotonic() + timeout_s
    while batcher.queue_depth != depth:
        assert time.monotonic() < deadline, f"queue depth {batcher.queue_depth} after {timeout_s} s, expected {depth}"
        await asyncio.sleep(0.001)


def rows(*values: float, width: int = 3) -> Tensors:
    """One row per value, every column equal to the value, so rows are easy to tell apart."""
    return {"x": np.repeat(np.asarray(values, dtype=np.float64)[:, None], width, axis=1)}


def config(**overrides: Any) -> BatchingConfig:
    return BatchingConfig(**{"max_batch_size": 8, "max_latency_ms": 20.0, **overrides})


# -- splitting and ordering ------------------------------------------------------------------------


def test_each_caller_gets_exactly_its_rows_and_the_unbatched_answer() -> None:
    model = Recorder()
    batcher = DynamicBatcher(model, config(max_batch_size=64, max_latency_ms=50))
    requests = [rows(*(float(100 * i + j) for j in range(1 + i % 5))) for i in range(20)]

    async def main() -> list[Tensors]:
        try:
            return await asyncio.gather(*(batcher.submit(r) for r in requests))
        finally:
            await batcher.close()

    results = _run(main)
    for request, result in zip(requests, results, strict=True):
        expected = Recorder()(request)
        assert list(result) == ["y", "s"]
        np.testing.assert_array_equal(result["y"], expected["y"])
        np.testing.assert_array_equal(result["s"], expected["s"])
    assert len(model.calls) < len(requests), "nothing was merged"
    assert sum(model.sizes) == sum(len(r["x"]) for r in requests)


def test_concurrent_requests_are_merged_up_to_max_batch_size() -> None:
    model = Recorder()
    batches: list[tuple[int, int]] = []
    batcher = DynamicBatcher(model, config(max_latency_ms=50), on_batch=lambda r, n: batches.append((r, n)))

    async def main() -> list[Tensors]:
        try:
            return await asyncio.gather(*(batcher.submit(rows(float(i))) for i in range(50)))
        finally:
            await batcher.close()

    results = _run(main)
    # All 50 are queued before the worker first runs, so batches are full except the last.
    assert model.sizes == [8, 8, 8, 8, 8, 8, 2]
    assert batches == [(8, 8)] * 6 + [(2, 2)]
    assert [float(r["y"][0, 0]) for r in results] == [2.0 * i for i in range(50)]
    # FIFO: the model saw the rows in submission order.
    assert [float(v) for call in model.calls for v in call["x"][:, 0]] == [float(i) for i in range(50)]


def test_single_request_is_passed_through_without_copies() -> None:
    inputs = rows(1.0, 2.0)
    answer = {"y": np.arange(2)}
    seen: list[Tensors] = []

    def model(batch: Tensors) -> Tensors:
        seen.append(batch)
        return answer

    batcher = DynamicBatcher(model, config())

    async def main() -> Tensors:
        try:
            return await batcher.submit(inputs)
        finally:
            await batcher.close()

    result = _run(main)
    assert seen[0]["x"] is inputs["x"]
    assert result is answer


# -- when batches are sent -------------------------------------------------------------------------


def test_lone_request_is_answered_after_max_latency_not_held() -> None:
    model = Recorder()
    batcher = DynamicBatcher(model, config(max_batch_size=32, max_latency_ms=100))

    async def main() -> float:
        started = time.monotonic()
        try:
            result = await batcher.submit(rows(3.0))
        finally:
            await batcher.close()
        assert float(result["y"][0, 0]) == 6.0
        return time.monotonic() - started

    elapsed = _run(main, timeout=5)
    assert elapsed >= 0.08, "it did not wait for batch-mates"
    assert elapsed < 3.0
    assert model.sizes == [1]


def test_full_batch_is_sent_without_waiting_for_the_deadline() -> None:
    model = Recorder()
    # A 60 s latency would blow the 5 s test timeout if a full batch waited for it.
    batcher = DynamicBatcher(model, config(max_batch_size=2, max_latency_ms=60_000))

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit(rows(1.0)))
        await until_queued(batcher, 1)  # the first waits in the batch window
        second = await batcher.submit(rows(2.0))
        assert float(second["y"][0, 0]) == 4.0
        assert float((await first)["y"][0, 0]) == 2.0
        await batcher.close()

    _run(main, timeout=5)
    assert model.sizes == [2]


def test_requests_queued_during_a_batch_form_the_next_one() -> None:
    gate = Gate()
    batcher = DynamicBatcher(gate, config(max_batch_size=8, max_latency_ms=0))

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit(rows(0.0)))
        await gate.wait_started()
        rest = [asyncio.ensure_future(batcher.submit(rows(float(i)))) for i in range(1, 6)]
        await until_queued(batcher, 5)
        gate.release.set()
        await asyncio.gather(first, *rest)
        await batcher.close()

    _run(main, timeout=5)
    assert [len(c["x"]) for c in gate.calls] == [1, 5]


def test_max_batch_size_one_never_merges() -> None:
    model = Recorder()
    batcher = DynamicBatcher(model, config(max_batch_size=1, max_latency_ms=50))

    async def main() -> list[Tensors]:
        try:
            return await asyncio.gather(*(batcher.submit(rows(float(i))) for i in range(10)))
        finally:
            await batcher.close()

    results = _run(main)
    assert model.sizes == [1] * 10
    assert [float(r["y"][0, 0]) for r in results] == [2.0 * i for i in range(10)]


def test_incompatible_requests_are_not_merged_and_keep_their_turn() -> None:
    model = Recorder()
    batcher = DynamicBatcher(model, config(max_batch_size=2, max_latency_ms=20))
    a1, b, a2, a3, a4 = rows(1.0), rows(2.0, width=4), rows(3.0), rows(4.0), rows(5.0)

    async def main() -> list[Tensors]:
        try:
            return await asyncio.gather(*(batcher.submit(r) for r in (a1, b, a2, a3, a4)))
        finally:
            await batcher.close()

    results = _run(main)
    # b arrived second: it may be passed by one batch, then it heads the next one.
    assert [[float(v) for v in c["x"][:, 0]] for c in model.calls] == [[1.0, 3.0], [2.0], [4.0, 5.0]]
    assert results[1]["y"].shape == (1, 4)
    assert [float(r["y"][0, 0]) for r in results] == [2.0, 4.0, 6.0, 8.0, 10.0]


@pytest.mark.parametrize(
    "other",
    [
        pytest.param({"x": np.ones((1, 3), dtype=np.float32)}, id="dtype"),
        pytest.param({"x": np.ones((1, 3, 1))}, id="rank"),
        pytest.param({"x": np.ones((1, 3)), "mask": np.ones((1, 3))}, id="names"),
    ],
)
def test_requests_differing_in_dtype_shape_or_names_are_not_merged(other: Tensors) -> None:
    calls: list[Tensors] = []

    def model(inputs: Tensors) -> Tensors:
        calls.append(inputs)
        return {"y": inputs["x"] + 1}

    batcher = DynamicBatcher(model, config(max_latency_ms=20))
    plain = {"x": np.ones((1, 3))}

    async def main() -> list[Tensors]:
        try:
            return await asyncio.gather(*(batcher.submit(r) for r in (plain, other, plain)))
        finally:
            await batcher.close()

    results = _run(main)
    assert len(calls) == 2
    assert sorted(len(c["x"]) for c in calls) == [1, 2]
    assert results[1]["y"].dtype == other["x"].dtype
    assert results[1]["y"].shape == other["x"].shape


def test_oversize_request_runs_alone_and_whole() -> None:
    model = Recorder()
    batcher = DynamicBatcher(model, config(max_batch_size=4, max_latency_ms=20))
    big = rows(*(float(i) for i in range(10)))

    async def main() -> list[Tensors]:
        try:
            return list(
                await asyncio.gather(batcher.submit(rows(-1.0)), batcher.submit(big), batcher.submit(rows(-2.0)))
            )
        finally:
            await batcher.close()

    results = _run(main)
    # FIFO: the big request does not fit beside the first, so it goes next, alone; nothing jumps it.
    assert model.sizes == [1, 10, 1]
    np.testing.assert_array_equal(results[1]["y"], big["x"] * 2)
    assert float(results[2]["y"][0, 0]) == -4.0


# -- back-pressure ---------------------------------------------------------------------------------


def test_queue_full_is_refused_at_once_with_retry_after() -> None:
    gate = Gate()
    batcher = DynamicBatcher(gate, config(max_batch_size=1, max_queue_size=2))

    async def main() -> None:
        running = asyncio.ensure_future(batcher.submit(rows(0.0)))
        await gate.wait_started()  # started: no longer counts as waiting
        queued = [asyncio.ensure_future(batcher.submit(rows(float(i)))) for i in (1, 2)]
        await until_queued(batcher, 2)
        with pytest.raises(QueueFullError, match="max_queue_size=2") as refused:
            await batcher.submit(rows(9.0))
        assert refused.value.retry_after_s >= 1.0
        assert refused.value.retry_after_s <= 60.0
        gate.release.set()
        await asyncio.gather(running, *queued)
        assert batcher.queue_depth == 0
        assert float((await batcher.submit(rows(4.0)))["y"][0, 0]) == 8.0  # room again
        await batcher.close()

    _run(main, timeout=5)
    assert 9.0 not in gate.seen()


# -- failures --------------------------------------------------------------------------------------


def test_failing_request_is_isolated_from_its_batch_mates() -> None:
    calls: list[int] = []

    def model(inputs: Tensors) -> Tensors:
        calls.append(len(inputs["x"]))
        if np.isnan(inputs["x"]).any():
            raise ValueError("NaN in input")
        return {"y": inputs["x"] * 2}

    batcher = DynamicBatcher(model, config(max_latency_ms=50))
    values = [1.0, 2.0, float("nan"), 4.0, 5.0]

    async def main() -> list[Tensors | BaseException]:
        try:
            return await asyncio.gather(*(batcher.submit(rows(v)) for v in values), return_exceptions=True)
        finally:
            await batcher.close()

    results = _run(main)
    assert calls == [5, 1, 1, 1, 1, 1], "the merged batch failed, then each request ran alone"
    assert isinstance(results[2], ValueError)
    assert str(results[2]) == "NaN in input"
    for i in (0, 1, 3, 4):
        result = results[i]
        assert isinstance(result, dict)
        assert float(result["y"][0, 0]) == 2.0 * values[i]


def test_single_request_gets_the_models_own_exception() -> None:
    boom = ValueError("bad feature")

    def model(inputs: Tensors) -> Tensors:
        raise boom

    batcher = DynamicBatcher(model, config())

    async def main() -> None:
        try:
            with pytest.raises(ValueError) as raised:
                await batcher.submit(rows(1.0))
            assert raised.value is boom
        finally:
            await batcher.close()

    _run(main)


def test_output_with_wrong_row_count_fails_the_whole_batch() -> None:
    calls: list[int] = []

    def model(inputs: Tensors) -> Tensors:
        calls.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2, "proba": inputs["x"][:-1]}

    batcher = DynamicBatcher(model, config(max_latency_ms=50))

    async def main() -> list[Tensors | BaseException]:
        try:
            return await asyncio.gather(*(batcher.submit(rows(float(i))) for i in range(3)), return_exceptions=True)
        finally:
            await batcher.close()

    results = _run(main)
    assert calls == [3], "a model bug is not re-run request by request"
    for result in results:
        assert isinstance(result, BatchOutputError)
        assert "'proba'" in str(result) and "2 rows" in str(result) and "3 input rows" in str(result)
    assert results[0] is not results[1], "each caller gets its own exception object"


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        pytest.param({"y": np.float64(1.0)}, "must be a numpy array", id="numpy-scalar"),
        pytest.param({"y": np.array(1.0)}, "no batch axis", id="0-d"),
        pytest.param([np.zeros(1)], "must return a dict", id="list"),
    ],
)
def test_outputs_without_a_batch_axis_are_errors(outputs: Any, message: str) -> None:
    batcher = DynamicBatcher(lambda _inputs: outputs, config())

    async def main() -> None:
        try:
            with pytest.raises(BatchOutputError, match=message):
                await batcher.submit(rows(1.0))
        finally:
            await batcher.close()

    _run(main)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        pytest.param({}, "non-empty dict", id="empty"),
        pytest.param({"x": [1.0, 2.0]}, "got list", id="list"),
        pytest.param({"x": np.array(1.0)}, "0-d array", id="0-d"),
        pytest.param(
            {"x": np.ones((2, 3)), "m": np.ones((3, 3))},
            "input 'm' has 3, the inputs before it have 2",
            id="rows",
        ),
    ],
)
def test_unbatchable_inputs_are_rejected_as_value_errors(inputs: Any, message: str) -> None:
    model = Recorder()
    batcher = DynamicBatcher(model, config())

    async def main() -> None:
        try:
            with pytest.raises(ValueError, match=message):
                await batcher.submit(inputs)
        finally:
            await batcher.close()

    _run(main)
    assert model.calls == []


# -- cancellation ----------------------------------------------------------------------------------


def test_request_cancelled_while_queued_never_runs() -> None:
    gate = Gate()
    batcher = DynamicBatcher(gate, config(max_batch_size=1))

    async def main() -> None:
        running = asyncio.ensure_future(batcher.submit(rows(1.0)))
        await gate.wait_started()
        doomed = asyncio.ensure_future(batcher.submit(rows(2.0)))
        kept = asyncio.ensure_future(batcher.submit(rows(3.0)))
        await until_queued(batcher, 2)
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        assert batcher.queue_depth == 1
        gate.release.set()
        assert float((await running)["y"][0, 0]) == 2.0
        assert float((await kept)["y"][0, 0]) == 6.0
        await batcher.close()

    _run(main, timeout=5)
    assert gate.seen() == [1.0, 3.0]


def test_request_cancelled_while_running_leaves_batch_mates_answered() -> None:
    gate = Gate()
    batcher = DynamicBatcher(gate, config(max_batch_size=4, max_latency_ms=10))

    async def main() -> None:
        tasks = [asyncio.ensure_future(batcher.submit(rows(float(i)))) for i in range(3)]
        await gate.wait_started()
        tasks[1].cancel()
        await asyncio.wait([tasks[1]], timeout=2)  # the cancellation has reached submit()
        gate.release.set()
        assert float((await tasks[0])["y"][0, 0]) == 0.0
        assert float((await tasks[2])["y"][0, 0]) == 4.0
        with pytest.raises(asyncio.CancelledError):
            await tasks[1]
        await batcher.close()

    _run(main, timeout=5)
    assert [len(c["x"]) for c in gate.calls] == [3]


def test_cancelled_while_failing_batch_runs_raises_no_unretrieved_errors() -> None:
    started = threading.Event()
    release = threading.Event()

    def model(inputs: Tensors) -> Tensors:
        started.set()
        assert release.wait(5)
        raise ValueError("always fails")

    batcher = DynamicBatcher(model, config(max_batch_size=4, max_latency_ms=10))

    async def main() -> None:
        tasks = [asyncio.ensure_future(batcher.submit(rows(float(i)))) for i in range(2)]
        while not started.is_set():
            await asyncio.sleep(0.001)
        tasks[0].cancel()
        release.set()
        with pytest.raises(ValueError, match="always fails"):
            await tasks[1]
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]
        await batcher.close()

    _run(main, timeout=5)  # _run fails on "Future exception was never retrieved"


def test_caller_cancelled_after_its_error_was_set_leaves_nothing_unretrieved() -> None:
    tasks: list[asyncio.Future[Tensors]] = []
    calls: list[int] = []

    def model(inputs: Tensors) -> Tensors:
        calls.append(len(inputs["x"]))
        if len(calls) == 1:
            raise ValueError("first fails")
        return {"y": inputs["x"]}

    def hook(rows: int, requests: int) -> None:
        if calls:  # second batch: the first caller's future holds its error, its task has not woken yet
            assert tasks[0].cancel()

    batcher = DynamicBatcher(model, config(max_batch_size=1), on_batch=hook)

    async def main() -> list[Tensors | BaseException]:
        tasks.extend(asyncio.ensure_future(batcher.submit(rows(1.0))) for _ in range(2))
        try:
            return await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await batcher.close()

    results = _run(main)
    assert isinstance(results[0], asyncio.CancelledError)
    assert isinstance(results[1], dict)


# -- threading and lifecycle -----------------------------------------------------------------------


def test_run_batch_runs_off_the_event_loop() -> None:
    model = Recorder(delay_s=0.2)
    batcher = DynamicBatcher(model, config(max_latency_ms=0))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def main() -> int:
        tick_task = asyncio.ensure_future(ticker())
        try:
            await batcher.submit(rows(1.0))
        finally:
            tick_task.cancel()
            await batcher.close()
        return threading.get_ident()

    loop_thread = _run(main)
    assert ticks >= 5, f"the loop only ticked {ticks} times during a 0.2 s predict"
    assert model.threads and model.threads[0] != loop_thread


def test_close_fails_waiting_requests_but_finishes_the_running_batch() -> None:
    gate = Gate()
    batcher = DynamicBatcher(gate, config(max_batch_size=1))

    async def main() -> None:
        running = asyncio.ensure_future(batcher.submit(rows(1.0)))
        await gate.wait_started()
        waiting = [asyncio.ensure_future(batcher.submit(rows(float(i)))) for i in (2, 3)]
        await until_queued(batcher, 2)
        closing = asyncio.ensure_future(batcher.close())
        for task in waiting:
            with pytest.raises(BatcherClosedError):
                await task
        assert batcher.queue_depth == 0
        assert not closing.done(), "close() waits for the running batch"
        gate.release.set()
        assert float((await running)["y"][0, 0]) == 2.0
        await closing
        await batcher.close()  # idempotent
        with pytest.raises(BatcherClosedError):
            await batcher.submit(rows(4.0))

    _run(main, timeout=5)
    assert gate.seen() == [1.0]


def test_close_with_drain_runs_waiting_requests_first() -> None:
    gate = Gate()
    batcher = DynamicBatcher(gate, config(max_batch_size=1))

    async def main() -> list[Tensors]:
        running = asyncio.ensure_future(batcher.submit(rows(1.0)))
        await gate.wait_started()
        waiting = [asyncio.ensure_future(batcher.submit(rows(float(i)))) for i in (2, 3)]
        await until_queued(batcher, 2)
        closing = asyncio.ensure_future(batcher.close(drain=True))
        gate.release.set()
        await closing
        return await asyncio.gather(running, *waiting)

    results = _run(main, timeout=5)
    assert [float(r["y"][0, 0]) for r in results] == [2.0, 4.0, 6.0]


def test_close_before_any_request_and_batcher_reused_across_event_loops() -> None:
    model = Recorder()
    batcher = DynamicBatcher(model, config())  # built outside any running loop
    assert float(_run(lambda: batcher.submit(rows(1.0)))["y"][0, 0]) == 2.0
    assert float(_run(lambda: batcher.submit(rows(2.0)))["y"][0, 0]) == 4.0
    _run(batcher.close)
    _run(DynamicBatcher(model, config()).close)
    assert model.sizes == [1, 1]


def test_broken_metrics_hook_does_not_fail_predictions(caplog: pytest.LogCaptureFixture) -> None:
    def hook(rows: int, requests: int) -> None:
        raise RuntimeError("metrics down")

    batcher = DynamicBatcher(Recorder(), config(), on_batch=hook)

    async def main() -> Tensors:
        try:
            return await batcher.submit(rows(1.0))
        finally:
            await batcher.close()

    assert float(_run(main)["y"][0, 0]) == 2.0
    assert "on_batch hook" in caplog.text


# -- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size must be an integer >= 1, got 0"),
        ({"max_batch_size": 2.5}, "max_batch_size must be an integer >= 1, got 2.5"),
        ({"max_batch_size": True}, "max_batch_size must be an integer >= 1, got True"),
        ({"max_queue_size": 0}, "max_queue_size must be an integer >= 1, got 0"),
        ({"max_latency_ms": -1.0}, "max_latency_ms must be a finite number >= 0, got -1.0"),
        ({"max_latency_ms": float("nan")}, "max_latency_ms must be a finite number >= 0, got nan"),
        ({"max_latency_ms": float("inf")}, "max_latency_ms must be a finite number >= 0, got inf"),
        ({"max_latency_ms": "2"}, "max_latency_ms must be a finite number >= 0, got '2'"),
    ],
)
def test_config_rejects_bad_values_naming_them(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        BatchingConfig(**overrides)
    assert str(raised.value) == message


def test_config_defaults_and_zero_latency_are_valid() -> None:
    assert BatchingConfig() == BatchingConfig(max_batch_size=32, max_latency_ms=2.0, max_queue_size=1024)
    assert BatchingConfig(max_latency_ms=0).max_latency_ms == 0


async def _call(batcher: DynamicBatcher, x: np.ndarray, delay_s: float, patience_s: float | None) -> str:
    """One client: arrive after ``delay_s``, give up after ``patience_s``; how it ended."""
    await asyncio.sleep(delay_s)
    try:
        result = await asyncio.wait_for(batcher.submit({"x": x}), patience_s)
    except TimeoutError:
        return "cancelled"
    except ValueError:
        return "failed"
    np.testing.assert_array_equal(result["y"], x * 2)
    return "ok"


def test_stress_mixed_shapes_failures_and_cancellations_settle_every_request() -> None:
    """Many callers at once, two shapes, some bad rows, some impatient clients: all accounted for."""
    rng = np.random.default_rng(7)
    sizes: list[int] = []

    def model(inputs: Tensors) -> Tensors:
        sizes.append(len(inputs["x"]))
        time.sleep(0.0005)
        if np.isnan(inputs["x"]).any():
            raise ValueError("NaN")
        return {"y": inputs["x"] * 2}

    batcher = DynamicBatcher(model, config(max_batch_size=16, max_latency_ms=1, max_queue_size=10_000))
    inputs = [rng.random((int(rng.integers(1, 5)), int(rng.integers(2, 4)))) for _ in range(400)]
    bad = rng.random(len(inputs)) < 0.05
    impatient = rng.random(len(inputs)) < 0.1
    for x, is_bad in zip(inputs, bad, strict=True):
        x[0, 0] = np.nan if is_bad else x[0, 0]

    async def main() -> list[str]:
        calls = (
            _call(batcher, x, float(rng.random()) * 0.02, 0.001 if hurry else None)
            for x, hurry in zip(inputs, impatient, strict=True)
        )
        try:
            return list(await asyncio.gather(*calls))
        finally:
            assert batcher.queue_depth == 0
            await batcher.close()

    outcomes = _run(main, timeout=30)
    for is_bad, hurry, outcome in zip(bad, impatient, outcomes, strict=True):
        answered = "failed" if is_bad else "ok"
        assert outcome in ({"cancelled", answered} if hurry else {answered})
    assert {"ok", "failed", "cancelled"} <= set(outcomes)
    assert max(sizes) <= 16
    assert len(sizes) < len(inputs), "requests were merged"
