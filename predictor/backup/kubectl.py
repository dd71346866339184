"""kubectl, bound to one context, as hack/restore.sh's steps call it (the seam its tests fake:
tests/e2e/fake_cluster.py and the stand-in kubectl of tests/e2e/test_hack_scripts.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


class RestoreFailed(Exception):
    """The restore stops: exit status 1, the message after '<prog>: error: '."""


@dataclass(frozen=True)
class Kubectl:
    context: str = ""

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """`kubectl [--context CTX] ARGS`, its output captured; never raises on a failure."""
        command = ["kubectl", *(["--context", self.context] if self.context else []), *args]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)

    def ok(self, *args: str, stdin: str | None = None) -> bool:
        return self(*args, stdin=stdin).returncode == 0

    def output(self, *args: str) -> str:
        """stdout of a read that must work; a failure stops the restore with kubectl's last word."""
        result = self(*args)
        if result.returncode != 0:
            raise RestoreFailed(f"kubectl {' '.join(args)}: {last_line(result.stderr)}")
        return result.stdout


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def wait_until(
    timeout: float, what: str, check: Callable[[], bool], warn: Callable[[str], None], poll: float = 3.0
) -> bool:
    """Poll CHECK every POLL seconds until it holds; False (and a warning) after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            warn(f"timed out after {timeout:g}s waiting for {what}")
            return False
        time.sleep(poll)
    return True


def stderr_block(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") or not text else text + "\n")
