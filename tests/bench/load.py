"""Drive a server with a bounded load: wrk when it is installed, else a small asyncio generator.

Both send the same keep-alive HTTP/1.1 POST of one v2 JSON body over a fixed number of
connections for a fixed time, only ever to 127.0.0.1, and stop by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench.report import LoadResult, parse_http_head, parse_wrk_output, summarize_latencies
from tests.bench.servers import HOST

LUA_SCRIPT = Path(__file__).with_name("wrk_report.lua")


@dataclass(frozen=True)
class LoadSpec:
    connections: int
    duration_s: float
    threads: int = 1
    timeout_s: float = 5.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


def pick_tool(requested: str) -> str:
    """``auto`` means wrk where installed, else the Python generator."""
    if requested == "wrk":
        if wrk_path() is None:
            raise SystemExit("error: --load-tool wrk, but wrk is not installed (apt-get install -y wrk)")
        return "wrk"
    if requested == "python":
        return "python"
    return "wrk" if wrk_path() is not None else "python"


def run_load(tool: str, port: int, path: str, body_file: Path, spec: LoadSpec) -> LoadResult:
    if tool == "wrk":
        return run_wrk(port, path, body_file, spec)
    return run_python(port, path, body_file.read_bytes(), spec)


def run_wrk(port: int, path: str, body_file: Path, spec: LoadSpec) -> LoadResult:
    wrk = wrk_path()
    assert wrk is not None
    argv = [
        wrk,
        f"-t{spec.threads}",
        f"-c{spec.connections}",
        f"-d{max(1, round(spec.duration_s))}s",
        f"--timeout={max(1, round(spec.timeout_s))}s",
        "-s",
        str(LUA_SCRIPT),
        f"http://{HOST}:{port}{path}",
    ]
    env = dict(os.environ, SERVEKIT_BENCH_BODY=str(body_file))
    # wrk stops after -d by itself; the timeout here only guards against it hanging.
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=spec.duration_s + 30, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"wrk exited with code {out.returncode}: {out.stderr.strip() or out.stdout.strip()}")
    return parse_wrk_output(out.stdout)


def run_python(port: int, path: str, body: bytes, spec: LoadSpec) -> LoadResult:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with kserve's uvicorn[standard]
        runner = asyncio.run
    return runner(_python_load(port, path, body, spec))


async def _python_load(port: int, path: str, body: bytes, spec: LoadSpec) -> LoadResult:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[int] = []
    counts = {"non_2xx": 0, "socket_errors": 0}
    start = time.perf_counter()
    deadline = start + spec.duration_s

    async def one_connection() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            while time.perf_counter() < deadline:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                assert reader is not None
                t0 = time.perf_counter_ns()
                try:
                    writer.write(request)
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), spec.timeout_s)
                    status, length, chunked = parse_http_head(head)
                    if chunked or length is None:
                        raise ValueError("the load generator reads only Content-Length responses")
                    await asyncio.wait_for(reader.readexactly(length), spec.timeout_s)
                except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError):
                    counts["socket_errors"] += 1
                    writer.close()
                    reader = writer = None
                    continue
                latencies.append(time.perf_counter_ns() - t0)
                if not 200 <= status < 300:
                    counts["non_2xx"] += 1
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    await asyncio.gather(*(one_connection() for _ in range(spec.connections)))
    elapsed = time.perf_counter() - start
    return summarize_latencies(latencies, elapsed, counts["non_2xx"], counts["socket_errors"], "python-asyncio")
