"""The traffic the canary tests scrape: a lease that ends stops the requests, and a renewed lease
starts them again. The cluster tests' driver lives for the whole package; when its one fixed bound
ran out halfway through, a later test waited in vain for requests (a CI failure)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest

from tests.support.canary_metrics import TrafficDriver
from tests.support.server import Server


class _Counting(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        counter = cast(_CountingServer, self.server)
        counter.requests += 1
        counter.arrived.set()

    def log_message(self, *_: Any) -> None:
        pass


class _CountingServer(http.server.ThreadingHTTPServer):
    requests = 0
    arrived: threading.Event


@dataclass
class _Target:
    url: str


@pytest.fixture
def counter() -> Iterator[_CountingServer]:
    server = _CountingServer(("127.0.0.1", 0), _Counting)
    server.arrived = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _driver(counter: _CountingServer, seconds: float) -> TrafficDriver:
    target = _Target(f"http://127.0.0.1:{counter.server_address[1]}")
    return TrafficDriver([cast(Server, target)], seconds=seconds)


def test_an_ended_lease_sends_nothing_until_renewed(counter: _CountingServer) -> None:
    with _driver(counter, seconds=0) as traffic:
        # The driver's thread runs its loop every 30 ms: 20 loops with the lease over send nothing.
        assert not counter.arrived.wait(0.6), f"{counter.requests} requests sent with no lease"
        traffic.keep_going(30)
        assert counter.arrived.wait(10), "no request within 10 s of renewing the lease"


def test_keep_going_never_shortens_a_lease(counter: _CountingServer) -> None:
    with _driver(counter, seconds=30) as traffic:
        traffic.keep_going(0)
        assert counter.arrived.wait(10), "a shorter renewal stopped a running lease"
