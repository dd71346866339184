"""The answer stores: time to live, bound, one feedback per answer, and the outcome window."""

from __future__ import annotations

from pathlib import Path

import pytest

from predictor.monitoring.answers import MemoryAnswers, OutcomeWindow, SharedAnswers


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_taken_once() -> None:
    store = MemoryAnswers(max_answers=10, ttl_s=60, window=10, clock=Clock())
    store.put(("a",), [1, 2])
    assert store.take("a") == [1, 2]
    assert store.take("a") is None
    assert store.take("never") is None


def test_answers_expire_after_their_time_to_live() -> None:
    clock = Clock()
    store = MemoryAnswers(max_answers=10, ttl_s=60, window=10, clock=clock)
    store.put(("old",), [0])
    clock.now += 30
    store.put(("young",), [1])
    clock.now += 30  # "old" is exactly 60 s old: expired
    assert store.take("old") is None
    assert store.take("young") == [1]


def test_expired_answers_leave_the_store_as_new_ones_arrive() -> None:
    clock = Clock()
    store = MemoryAnswers(max_answers=10, ttl_s=5, window=10, clock=clock)
    store.put(("a",), [0])
    store.put(("b",), [0])
    clock.now += 10
    store.put(("c",), [0])
    assert len(store) == 1


def test_the_oldest_answers_go_when_the_store_is_full() -> None:
    store = MemoryAnswers(max_answers=3, ttl_s=60, window=10, clock=Clock())
    for name in "abcd":
        store.put((name,), [name])
    assert store.take("a") is None
    assert [store.take(n) for n in "bcd"] == [["b"], ["c"], ["d"]]


def test_one_answer_under_two_ids_and_a_reused_id_keeps_the_newest() -> None:
    store = MemoryAnswers(max_answers=10, ttl_s=60, window=10, clock=Clock())
    store.put(("header-id", "body-id"), [3])
    store.put(("header-id",), [4])
    assert store.take("header-id") == [4]
    assert store.take("body-id") == [3]


def test_the_outcome_window_is_the_mean_of_the_last_rows() -> None:
    window = OutcomeWindow(4)
    assert window.record([1.0, 0.0]) == 0.5
    assert window.record([1.0, 1.0, 1.0]) == 0.75  # the first 1.0 left the window
    assert OutcomeWindow(3).record([0.5, 2.5]) == 1.5


def test_a_shared_store_joins_an_answer_that_another_worker_kept(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "answers.sqlite"
    first = SharedAnswers(path, max_answers=100, ttl_s=60, window=4, clock=clock)
    second = SharedAnswers(path, max_answers=100, ttl_s=60, window=4, clock=clock)
    try:
        first.put(("r1",), [2, "x"])
        first.flush()
        assert second.take("r1") == [2, "x"]
        assert first.take("r1") is None  # taken once, pod-wide
        assert first.record([1.0, 0.0]) == 0.5
        assert second.record([1.0, 1.0, 1.0]) == 0.75  # one window for both
    finally:
        first.close()
        second.close()


def test_a_shared_store_finds_an_answer_not_yet_flushed_by_its_own_worker(tmp_path: Path) -> None:
    store = SharedAnswers(tmp_path / "a.sqlite", max_answers=100, ttl_s=60, window=4)
    try:
        store.put(("mine",), [1])
        assert store.take("mine") == [1]
    finally:
        store.close()


@pytest.mark.parametrize("full", [False, True])
def test_a_shared_store_expires_and_bounds_answers(tmp_path: Path, full: bool) -> None:
    clock = Clock()
    store = SharedAnswers(tmp_path / "a.sqlite", max_answers=2, ttl_s=60, window=4, clock=clock)
    try:
        store.put(("a",), [1])
        clock.now += 1
        store.put(("b",), [1])
        if full:
            clock.now += 1
            store.put(("c",), [1])
            store.flush()
            assert store.take("a") is None
            assert store.take("c") == [1]
        else:
            store.flush()
            clock.now += 59.5  # "a" expired, "b" has half a second left
            assert store.take("a") is None
            assert store.take("b") == [1]
    finally:
        store.close()
