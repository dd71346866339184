"""A stand-in worker for the supervisor tests: it speaks the supervisor's protocol (identity,
readiness board, SIGTERM) without loading a model, and behaves as FAKE_WORKER says.

    FAKE_WORKER=serve        mark ready, serve until SIGTERM, then exit 0
    FAKE_WORKER=fail         exit 3 before ever being ready (a model that cannot load)
    FAKE_WORKER=die-once     worker 0 dies 0.3 s after it was ready; its replacement serves
    FAKE_WORKER=always-die   every worker dies 0.2 s after it was ready

Each worker appends "<event> <index> <pid> <replacement>" to the file FAKE_WORKER_LOG.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from predictor.workers.board import WORKER_ENV, ReadinessBoard, WorkerIdentity


def main() -> int:
    identity = WorkerIdentity.from_env(os.environ[WORKER_ENV])
    behaviour = os.environ["FAKE_WORKER"]
    log = Path(os.environ["FAKE_WORKER_LOG"])

    def record(event: str) -> None:
        with log.open("a") as file:
            file.write(f"{event} {identity.index} {os.getpid()} {int(identity.replacement)}\n")

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        record("stopped")
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    record("started")
    if behaviour == "fail":
        return 3
    ReadinessBoard(identity.board, identity.count).mark(identity.index, ready=True)
    if behaviour == "always-die" or (behaviour == "die-once" and identity.index == 0 and not identity.replacement):
        time.sleep(0.3 if behaviour == "die-once" else 0.2)
        record("died")
        os._exit(1)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
