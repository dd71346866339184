"""The supervisor's pure parts: what a worker is told, the readiness board, restarts, exit codes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from predictor.workers.board import WORKER_ENV, ReadinessBoard, WorkerIdentity
from predictor.workers.supervisor import RestartBudget, describe_exit, metrics_directory, worker_environment


def test_identity_survives_the_environment(tmp_path: Path) -> None:
    identity = WorkerIdentity(index=1, count=4, board=tmp_path / "ready", lifeline_fd=7, replacement=True)
    assert WorkerIdentity.from_env(identity.to_env()) == identity


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("not json", "is not what a supervisor writes"),
        ('{"index": 0}', "is not what a supervisor writes"),
        ('{"index": 4, "count": 4, "board": "/x", "lifeline_fd": 3, "replacement": false}', "index 4 outside 0..3"),
    ],
)
def test_a_bad_identity_is_refused_with_the_value(value: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        WorkerIdentity.from_env(value)


def test_board_is_shared_between_mappings(tmp_path: Path) -> None:
    supervisor = ReadinessBoard.create(tmp_path / "ready", 3)
    worker = ReadinessBoard(tmp_path / "ready", 3)  # another process maps the same file
    assert not supervisor.all_ready()
    for index in range(3):
        worker.mark(index, ready=True)
    assert supervisor.all_ready()
    assert supervisor.is_ready(2)
    supervisor.mark(1, ready=False)  # the supervisor saw worker 1 die
    assert not worker.all_ready()
    assert not worker.is_ready(1) and worker.is_ready(0)
    worker.mark(1, ready=True)
    supervisor.clear()
    assert not any(worker.is_ready(i) for i in range(3))
    supervisor.close()
    worker.close()


def test_restart_budget_counts_within_the_window() -> None:
    budget = RestartBudget(limit=2, window_s=60)
    assert budget.allow(0) and budget.allow(10)
    assert not budget.allow(20)  # a third death within a minute
    assert budget.allow(60.5)  # the first one left the window
    assert not budget.allow(61)


@pytest.mark.parametrize(
    ("code", "words"),
    [(0, "exited with code 0"), (2, "exited with code 2"), (-9, "was killed by SIGKILL"), (-200, "signal 200")],
)
def test_describe_exit(code: int, words: str) -> None:
    assert words in describe_exit(code)
    assert describe_exit(-signal.SIGSEGV) == "was killed by SIGSEGV"


def test_worker_environment_keeps_settings_and_splits_cores(tmp_path: Path) -> None:
    identity = WorkerIdentity(0, 4, tmp_path / "ready", 5)
    base = {"PREDICTOR_MAX_BATCH_SIZE": "64", "PATH": "/bin"}
    env = worker_environment(base, identity, tmp_path / "metrics", cpus=16)
    assert env["PREDICTOR_MAX_BATCH_SIZE"] == "64"
    assert WorkerIdentity.from_env(env[WORKER_ENV]) == identity
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "metrics")
    assert env["OMP_NUM_THREADS"] == "4"
    assert worker_environment(base, identity, tmp_path, cpus=2)["OMP_NUM_THREADS"] == "1"
    chosen = worker_environment({**base, "OMP_NUM_THREADS": "3"}, identity, tmp_path, cpus=16)
    assert chosen["OMP_NUM_THREADS"] == "3"  # the user's choice stands
    assert "OMP_NUM_THREADS" not in base  # the supervisor's own environment is left alone


def test_metrics_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert metrics_directory(tmp_path) == tmp_path / "metrics"
    assert (tmp_path / "metrics").is_dir()

    chosen = tmp_path / "chosen"
    chosen.mkdir()
    (chosen / "counter_123.db").write_bytes(b"old run")
    (chosen / "notes.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(chosen))
    assert metrics_directory(tmp_path / "run") == chosen
    assert sorted(p.name for p in chosen.iterdir()) == ["notes.txt"]  # only old metric files go


def test_the_supervisor_never_imports_torch() -> None:
    """Nothing CUDA can be initialised in the process that starts the workers."""
    code = (
        "import sys\n"
        "from predictor.server.main import build_parser, settings_from_args\n"
        "from predictor.workers import supervisor, worker\n"
        "settings_from_args(build_parser().parse_args(['--workers', '2']))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
