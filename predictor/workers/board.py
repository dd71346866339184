"""What the supervisor and its workers share (pure): a worker's identity and the readiness board.

Both sides import this module and nothing else of each other: the supervisor (supervisor.py) never
loads the worker's server, and a worker (worker.py) never runs the supervisor.
"""

from __future__ import annotations

import json
import mmap
from dataclasses import dataclass
from pathlib import Path

WORKER_ENV = "SERVEKIT_WORKER"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's switch to multiprocess mode


@dataclass(frozen=True)
class WorkerIdentity:
    """What the supervisor tells a worker, in the worker's ``SERVEKIT_WORKER`` variable."""

    index: int
    count: int
    board: Path
    lifeline_fd: int
    replacement: bool = False  # started in place of a worker that died

    def to_env(self) -> str:
        return json.dumps(
            {
                "index": self.index,
                "count": self.count,
                "board": str(self.board),
                "lifeline_fd": self.lifeline_fd,
                "replacement": self.replacement,
            }
        )

    @classmethod
    def from_env(cls, value: str) -> WorkerIdentity:
        try:
            data = json.loads(value)
            identity = cls(
                int(data["index"]),
                int(data["count"]),
                Path(data["board"]),
                int(data["lifeline_fd"]),
                bool(data["replacement"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{WORKER_ENV}={value!r} is not what a supervisor writes ({exc!r})") from None
        if not 0 <= identity.index < identity.count:
            raise ValueError(f"{WORKER_ENV}: worker index {identity.index} outside 0..{identity.count - 1}")
        return identity


class ReadinessBoard:
    """One byte per worker in a file that every worker maps: 1 once the worker listens, else 0.

    Single-byte writes to a shared mapping need no lock; a reader sees each byte old or new.
    """

    def __init__(self, path: Path, count: int) -> None:
        self.path = path
        self.count = count
        with path.open("r+b") as file:
            self._map = mmap.mmap(file.fileno(), count)
        self._all_ready = b"\x01" * count

    @classmethod
    def create(cls, path: Path, count: int) -> ReadinessBoard:
        path.write_bytes(bytes(count))
        return cls(path, count)

    def mark(self, index: int, ready: bool) -> None:
        self._map[index] = 1 if ready else 0

    def is_ready(self, index: int) -> bool:
        return self._map[index] == 1

    def all_ready(self) -> bool:
        return self._map[: self.count] == self._all_ready

    def clear(self) -> None:
        self._map[: self.count] = bytes(self.count)

    def close(self) -> None:
        self._map.close()
