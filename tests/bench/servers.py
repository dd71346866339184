"""Start servers as subprocesses on free 127.0.0.1 ports, wait for them to be ready, stop them for sure."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A server did not start, did not become ready, or answered wrongly."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def http_request(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def post_json(port: int, path: str, body: bytes, timeout: float = 10.0) -> tuple[int, Any]:
    status, data = http_request(port, "POST", path, body, timeout)
    try:
        return status, json.loads(data)
    except ValueError:
        return status, data.decode("utf-8", "replace")


@dataclass
class Server:
    """One server process; ``startup_s`` is spawn to first 200 from the ready path."""

    name: str
    argv: Sequence[str]
    port: int
    ready_path: str
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    startup_s: float | None = None
    _log: Any = field(default=None, repr=False)

    def start(self, timeout_s: float = 120.0) -> float:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        # PREDICTOR_* variables would change target (a) behind the table's back; --predictor-arg is the way.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREDICTOR_")}
        if self.env:
            env.update(self.env)
        t0 = time.perf_counter()
        # Its own session, so stop() can signal the server and any workers it forks, and a Ctrl-C in
        # the terminal reaches only the harness, which then stops the server itself.
        self.proc = subprocess.Popen(
            list(self.argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.cwd,
            start_new_session=True,
        )
        deadline = t0 + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with code {self.proc.returncode} before it was ready; "
                    f"log: {self.log_path}\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = http_request(self.port, "GET", self.ready_path, timeout=1.0)
                if status == 200:
                    self.startup_s = time.perf_counter() - t0
                    return self.startup_s
            if time.perf_counter() > deadline:
                raise ServerError(
                    f"{self.name} not ready after {timeout_s:.0f} s; log: {self.log_path}\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the server's process group, then SIGKILL what is left after ``grace_s``."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _signal_group(proc, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace_s)
            # Workers a server forked may outlive it; the group id is the server's own pid.
            _signal_group(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, n: int = 20) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in lines[-n:])


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


@contextlib.contextmanager
def running(server: Server, timeout_s: float = 120.0) -> Iterator[Server]:
    """Start ``server``, yield it once ready, and stop it however the block ends."""
    try:
        server.start(timeout_s)
        yield server
    finally:
        server.stop()
