"""A "started" signal from a test model to the test: a file per call, written as the model starts work.

The test models run in a server process, so the signal crosses processes through a directory. A test
that must act while a request is in the model waits for the file, instead of sleeping and hoping the
request got there.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

_calls = itertools.count()


def signal_started(directory: str | None) -> None:
    """Called by a test model as a slow call begins (no-op without a directory)."""
    if directory:
        Path(directory, f"started-{os.getpid()}-{next(_calls)}").touch()


def started_calls(directory: Path) -> int:
    return sum(1 for _ in directory.glob("started-*"))


def started_pids(directory: Path) -> set[int]:
    """The processes (server workers) in which a model call has begun."""
    return {int(path.name.split("-")[1]) for path in directory.glob("started-*")}


def wait_started(directory: Path, count: int = 1, timeout_s: float = 20.0, since: int = 0) -> None:
    """Until ``count`` calls past the first ``since`` have begun in the model; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while started_calls(directory) < since + count:
        assert time.monotonic() < deadline, f"no model call began within {timeout_s} s ({directory})"
        time.sleep(0.01)


async def wait_started_async(directory: Path, count: int = 1, timeout_s: float = 20.0, since: int = 0) -> None:
    import asyncio

    deadline = time.monotonic() + timeout_s
    while started_calls(directory) < since + count:
        assert time.monotonic() < deadline, f"no model call began within {timeout_s} s ({directory})"
        await asyncio.sleep(0.01)
