"""The supervisor's life cycle with stand-in workers (fake_worker.py): start, replace, give up, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration import processes
from tests.support.server import REPO

# Runs the real Supervisor in a process of its own (it installs signal handlers) over fake workers.
SUPERVISOR = """
import logging
import sys
from pathlib import Path
from predictor.workers.supervisor import Supervisor
logging.basicConfig(level=logging.INFO)
run_dir = Path(sys.argv[1])
command = [sys.executable, "-m", "tests.integration.fake_worker"]
sys.exit(Supervisor(command, int(sys.argv[2]), run_dir, run_dir).run())
"""


def start_supervisor(tmp_path: Path, behaviour: str, count: int = 2) -> tuple[subprocess.Popen[str], Path]:
    log = tmp_path / "events"
    log.touch()
    env = {**os.environ, "PYTHONPATH": str(REPO), "FAKE_WORKER": behaviour, "FAKE_WORKER_LOG": str(log)}
    process = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(tmp_path), str(count)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, log


def events(log: Path) -> list[tuple[str, int, int, bool]]:
    rows = [line.split() for line in log.read_text().splitlines()]
    return [(event, int(index), int(pid), replacement == "1") for event, index, pid, replacement in rows]


def wait_for(log: Path, count: int, event: str, timeout_s: float = 20) -> list[tuple[str, int, int, bool]]:
    deadline = time.monotonic() + timeout_s
    while len(found := [e for e in events(log) if e[0] == event]) < count:
        assert time.monotonic() < deadline, f"{count} {event!r} events not seen: {events(log)}"
        time.sleep(0.05)
    return found


def test_sigterm_stops_every_worker_and_exits_0(tmp_path: Path) -> None:
    supervisor, log = start_supervisor(tmp_path, "serve", count=3)
    started = wait_for(log, 3, "started")
    supervisor.send_signal(signal.SIGTERM)
    output, _ = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 0, output
    assert sorted(e[1] for e in wait_for(log, 3, "stopped")) == [0, 1, 2]
    assert processes.wait_until_gone([e[2] for e in started], 5) == []
    assert "SIGTERM received: stopping 3 workers" in output


def test_sigint_is_forwarded_as_sigterm(tmp_path: Path) -> None:
    supervisor, log = start_supervisor(tmp_path, "serve")
    wait_for(log, 2, "started")
    supervisor.send_signal(signal.SIGINT)
    output, _ = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 0, output
    assert len(wait_for(log, 2, "stopped")) == 2


def test_a_worker_that_fails_to_start_stops_the_server_with_its_code(tmp_path: Path) -> None:
    supervisor, log = start_supervisor(tmp_path, "fail")
    output, _ = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 3, output
    assert "exited with code 3 before it was ready; stopping the server" in output
    assert not [e for e in events(log) if e[3]], "no replacement for a worker that never served"


def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    supervisor, log = start_supervisor(tmp_path, "die-once")
    try:
        (died,) = wait_for(log, 1, "died")
        replacements = [e for e in wait_for(log, 3, "started") if e[3]]
        assert [(e[1], e[3]) for e in replacements] == [(0, True)]
        assert replacements[0][2] != died[2]
    finally:
        supervisor.send_signal(signal.SIGTERM)
        output, _ = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 0, output
    assert f"worker 0 (pid {died[2]}) exited with code 1; the pod reports not ready" in output


def test_a_worker_that_keeps_dying_stops_the_server(tmp_path: Path) -> None:
    supervisor, log = start_supervisor(tmp_path, "always-die", count=1)
    output, _ = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 1, output
    assert "more than 5 worker deaths within 600 s; stopping the server" in output
    assert len(events(log)) == 2 * 6  # the first worker and five replacements, each started and died
