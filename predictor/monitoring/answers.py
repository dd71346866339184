"""Recent answers, kept for feedback: bounded, with a time to live, in one process or pod-wide.

An answer is what the model said for one request (the output that truth is compared with), kept
under the request's id until its feedback arrives, it expires, or newer answers push it out. The
outcomes of joined feedback (1/0 per row for a classifier, the absolute error for a regressor)
form the window the live accuracy is the mean of.

``MemoryAnswers`` serves a single server. With ``--workers N`` a feedback call reaches whichever
worker the kernel picks, not necessarily the one that answered, so ``SharedAnswers`` keeps
answers and outcomes pod-wide in one SQLite file in the workers' run directory. Its request path
cost is an append to a local queue; a thread writes the queue every ``FLUSH_S``, and a feedback
lookup that misses waits one more flush before saying "unknown", so an answer is joinable from
any worker within ``FLUSH_S``.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import orjson

FLUSH_S = 0.05

Clock = Callable[[], float]


class AnswerStore(Protocol):
    """Where answers wait for feedback, and where the outcomes of joined feedback are kept."""

    ttl_s: float

    def put(self, ids: tuple[str, ...], answer: list[Any]) -> None:
        """Keep ``answer`` (one value per row) under each of ``ids``; on the request path, so cheap."""

    def take(self, request_id: str) -> list[Any] | None:
        """The answer under ``request_id``, removed (feedback is given once); None if unknown or expired."""

    def record(self, outcomes: list[float]) -> float:
        """Add joined outcomes to the window; the window's mean afterwards."""


class OutcomeWindow:
    """The last ``size`` outcomes and their mean."""

    def __init__(self, size: int) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def record(self, outcomes: list[float]) -> float:
        self._values.extend(outcomes)
        return math.fsum(self._values) / len(self._values)


class MemoryAnswers:
    """One process's answers: an insertion-ordered dict, so the oldest (first to expire) is in front."""

    def __init__(self, max_answers: int, ttl_s: float, window: int, clock: Clock = time.monotonic) -> None:
        self.max_answers = max_answers
        self.ttl_s = ttl_s
        self._clock = clock
        self._answers: OrderedDict[str, tuple[float, list[Any]]] = OrderedDict()
        self._window = OutcomeWindow(window)

    def put(self, ids: tuple[str, ...], answer: list[Any]) -> None:
        now = self._clock()
        self._expire(now)
        for request_id in ids:
            self._answers.pop(request_id, None)  # a reused id: the newest answer counts, at the back
            self._answers[request_id] = (now + self.ttl_s, answer)
        while len(self._answers) > self.max_answers:
            self._answers.popitem(last=False)

    def take(self, request_id: str) -> list[Any] | None:
        entry = self._answers.pop(request_id, None)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def record(self, outcomes: list[float]) -> float:
        return self._window.record(outcomes)

    def __len__(self) -> int:
        return len(self._answers)

    def _expire(self, now: float) -> None:
        while self._answers:
            expires, _ = next(iter(self._answers.values()))
            if expires > now:
                return
            self._answers.popitem(last=False)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (id TEXT PRIMARY KEY, expires REAL NOT NULL, answer BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS answers_expires ON answers (expires);
CREATE TABLE IF NOT EXISTS outcomes (seq INTEGER PRIMARY KEY AUTOINCREMENT, value REAL NOT NULL);
"""


class SharedAnswers:
    """Answers and outcomes of every worker of the pod in one SQLite file (see the module's docstring).

    Wall-clock time, not monotonic: expiry times are compared across processes.
    """

    def __init__(self, path: Path, max_answers: int, ttl_s: float, window: int, clock: Clock = time.time) -> None:
        self.path = path
        self.max_answers = max_answers
        self.ttl_s = ttl_s
        self.window = window
        self._clock = clock
        self._pending: deque[tuple[str, float, bytes]] = deque()
        self._lock = threading.Lock()
        # One connection, used under the lock from the flush thread and feedback calls alike.
        self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")  # answers are a cache: losing them in a crash is fine
        self._db.executescript(_SCHEMA)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._flush_forever, name="answers-flush", daemon=True)
        self._thread.start()

    def put(self, ids: tuple[str, ...], answer: list[Any]) -> None:
        expires = self._clock() + self.ttl_s
        blob = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
        for request_id in ids:
            self._pending.append((request_id, expires, blob))

    def take(self, request_id: str) -> list[Any] | None:
        """Blocking (SQLite): call it off the event loop."""
        found = self._take_once(request_id)
        if found is None:  # another worker may not have written it yet
            time.sleep(2 * FLUSH_S)
            found = self._take_once(request_id)
        return found

    def record(self, outcomes: list[float]) -> float:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO outcomes (value) VALUES (?)", [(v,) for v in outcomes])
                self._db.execute(
                    "DELETE FROM outcomes WHERE seq <= (SELECT MAX(seq) FROM outcomes) - ?", (self.window,)
                )
                (mean,) = self._db.execute("SELECT AVG(value) FROM outcomes").fetchone()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return float(mean)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self.flush()
        self._db.close()

    def _take_once(self, request_id: str) -> list[Any] | None:
        with self._lock:
            self._flush_locked()  # this worker's own recent answers first
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "DELETE FROM answers WHERE id = ? RETURNING expires, answer", (request_id,)
                ).fetchone()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if row is None or row[0] <= self._clock():
            return None
        return list(orjson.loads(row[1]))

    def _flush_forever(self) -> None:
        while not self._stopped.wait(FLUSH_S):
            with self._lock:
                self._flush_locked()

    def _flush_locked(self) -> None:
        rows = []
        while self._pending:
            rows.append(self._pending.popleft())
        if not rows:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO answers (id, expires, answer) VALUES (?, ?, ?)", rows)
            self._db.execute("DELETE FROM answers WHERE expires <= ?", (self._clock(),))
            # Over the bound: drop the oldest (the soonest to expire, as the TTL is one for all).
            self._db.execute(
                "DELETE FROM answers WHERE id IN (SELECT id FROM answers ORDER BY expires "
                "LIMIT max(0, (SELECT COUNT(*) FROM answers) - ?))",
                (self.max_answers,),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
