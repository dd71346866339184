"""``python -m tests.bench.layers``: the CPU cost per request of the layers in front of the v2 routes.

Request ids, the body limit, versioned paths and bearer auth (predictor/asgi/http_app.py) run on every
REST request. Their cost is a few microseconds, far below the noise of a load test on a shared
machine, so this measures them in-process: each stack in front of an app that reads the body and
answers 200, called with the same request as the benchmark's, CPU time per request, the median
of interleaved rounds. No sockets, no model; bounded by --rounds and --requests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from predictor.asgi.auth import BearerAuthApp, TokenFile
from predictor.asgi.interop import ModelVersionApp
from predictor.asgi.limits import BodyLimitApp
from predictor.asgi.request_id import RequestIdApp
from predictor.asgi.types import ASGIApp, Message, Receive, Scope, Send

BODY = b'{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}'
TOKEN = "bench-token"


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


def stacks(tokens: TokenFile) -> dict[str, tuple[ASGIApp, bool]]:
    """name -> (app, whether the client sends its own x-request-id)."""

    def guarded(with_auth: bool) -> ASGIApp:
        app: ASGIApp = BodyLimitApp(ModelVersionApp(answer, "iris", "1"), 64 << 20)
        return RequestIdApp(BearerAuthApp(app, tokens) if with_auth else app)

    return {
        "no layers": (answer, False),
        "request id (made), body limit, versions": (guarded(False), False),
        "request id (client's), body limit, versions": (guarded(False), True),
        "... and bearer auth": (guarded(True), False),
    }


def headers(client_id: bool) -> list[tuple[bytes, bytes]]:
    fields = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"authorization", f"Bearer {TOKEN}".encode()),
    ]
    return [*fields, (b"x-request-id", b"client-request-id-0001")] if client_id else fields


async def cpu_us_per_request(app: ASGIApp, client_id: bool, requests: int) -> float:
    async def receive() -> Message:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"the stack answered {message['status']}")

    start = time.process_time()
    for _ in range(requests):
        scope = {"type": "http", "method": "POST", "path": "/v2/models/iris/infer", "headers": headers(client_id)}
        await app(scope, receive, send)
    return (time.process_time() - start) / requests * 1e6


async def measure(rounds: int, requests: int, progress: Callable[[str], None]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "token"
        token_file.write_text(TOKEN + "\n")
        cases = stacks(TokenFile(token_file))
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for number in range(rounds):
            for name, (app, client_id) in cases.items():
                samples[name].append(await cpu_us_per_request(app, client_id, requests))
            progress(f"round {number + 1}/{rounds}")
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.layers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (median taken)")
    parser.add_argument("--requests", type=int, default=5000, help="requests per stack and round")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.requests < 1:
        parser.error(f"--rounds and --requests must be at least 1, got {args.rounds} and {args.requests}")
    results = asyncio.run(measure(args.rounds, args.requests, lambda line: print(line, file=sys.stderr)))
    base = results["no layers"]
    for name, value in results.items():
        print(f"{name:46s} {value:6.2f} us CPU/request  (+{value - base:5.2f} us)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
