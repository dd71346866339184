"""The soak: 60 s at high concurrency against a real server; 0 errors, resident memory flat.

Runs under `make soak` only (SERVEKIT_SOAK=1), never in `make test`: it takes about 90 s and wants
the machine to itself. The server is configured as in a cluster (bearer token, JSON logs); wrk
drives 64 connections cycling v2 JSON, v1 and v2 binary requests while 8 concurrent gRPC calls run
alongside. After a 15 s warm-up (imports, allocator arenas, caches fill), resident memory is
sampled every second for the 60 s; the last sample may exceed the first by less than 5 %.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from tests.secret_volume import SecretVolume
from tests.support.models import run_server
from tests.support.server import Server

pytestmark = pytest.mark.soak

WARMUP_S = 15
MEASURED_S = 60
CONNECTIONS = 64
GRPC_IN_FLIGHT = 8
MAX_GROWTH = 0.05
LUA = Path(__file__).with_name("mixed.lua")
ROW = [5.1, 3.5, 1.4, 0.2]


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.fixture(scope="module")
def soak_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    if not os.environ.get("SERVEKIT_SOAK"):
        pytest.skip("the 60 s soak runs under `make soak` (SERVEKIT_SOAK=1), not in `make test`")
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed: `make test-tools` installs it")
    from predictor.examples import sklearn_iris

    model = tmp_path_factory.mktemp("models") / "iris"
    sklearn_iris.build(model)
    volume = SecretVolume(tmp_path_factory.mktemp("secret"))
    volume.write("soak-token\n")
    bodies = tmp_path_factory.mktemp("soak-bodies")
    (bodies / "token").write_text("soak-token")
    (bodies / "v2.json").write_text(
        json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 4], "data": ROW * 2}]})
    )
    (bodies / "v1.json").write_text(json.dumps({"instances": [ROW]}))
    header = b'{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":16}}]}'
    (bodies / "binary.bin").write_bytes(header + np.array(ROW, dtype="<f4").tobytes())
    (bodies / "binary.len").write_text(str(len(header)))
    args = ["--auth_token_file", str(volume.path), "--log_format", "json"]
    for server in run_server(tmp_path_factory, Server(model, "iris", args=args)):
        yield server, bodies


@dataclass
class GrpcLoad:
    """Keeps ``GRPC_IN_FLIGHT`` ModelInfer calls going in a thread until stopped."""

    target: str
    calls: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    async def _caller(self, stub: pb_grpc.GRPCInferenceServiceStub) -> None:
        contents = pb.InferTensorContents(fp32_contents=ROW)
        tensor = pb.ModelInferRequest.InferInputTensor(
            name="features", datatype="FP32", shape=[1, 4], contents=contents
        )
        request = pb.ModelInferRequest(model_name="iris", inputs=[tensor])
        while not self._stop.is_set():
            try:
                await stub.ModelInfer(request, metadata=(("authorization", "Bearer soak-token"),), timeout=30)
                self.calls += 1
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")

    async def _run(self) -> None:
        import grpc

        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            await asyncio.gather(*(self._caller(stub) for _ in range(GRPC_IN_FLIGHT)))

    def __enter__(self) -> GrpcLoad:
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def wrk(server: Server, bodies: Path, seconds: int) -> dict[str, object]:
    wrk_path = shutil.which("wrk")
    assert wrk_path is not None
    command = [wrk_path, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), server.url]
    env = {**os.environ, "SERVEKIT_SOAK_DIR": str(bodies)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("SERVEKIT_SOAK_JSON "))
    summary: dict[str, object] = json.loads(line.split(" ", 1)[1])
    return summary


@pytest.mark.timeout(WARMUP_S + MEASURED_S + 240)
def test_soak(soak_server: tuple[Server, Path]) -> None:
    server, bodies = soak_server
    assert server.process is not None
    pid = server.process.pid
    warmup = wrk(server, bodies, WARMUP_S)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append(resident_bytes(pid))

    samples.append(resident_bytes(pid))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.monotonic()
    with GrpcLoad(server.grpc_target) as grpc_load:
        measured = wrk(server, bodies, MEASURED_S)
    elapsed = time.monotonic() - start
    stop.set()
    sampler.join(timeout=5)
    samples.append(resident_bytes(pid))

    first, last, peak = samples[0], samples[-1], max(samples)
    growth = (last - first) / first
    errors = measured["errors"]
    assert isinstance(errors, dict)
    rest_requests = int(str(measured["requests"]))
    print(
        f"\nsoak: {MEASURED_S} s after a {WARMUP_S} s warm-up ({warmup['requests']} requests), "
        f"{CONNECTIONS} REST connections + {GRPC_IN_FLIGHT} gRPC calls in flight\n"
        f"  REST: {rest_requests} requests ({rest_requests / elapsed:.0f}/s), "
        f"p50 {int(str(measured['p50_us'])) / 1000:.2f} ms, p99 {int(str(measured['p99_us'])) / 1000:.2f} ms, "
        f"errors {errors}\n"
        f"  gRPC: {grpc_load.calls} calls ({grpc_load.calls / elapsed:.0f}/s), {len(grpc_load.errors)} errors\n"
        f"  resident memory: {first / 2**20:.1f} MiB after warm-up, {last / 2**20:.1f} MiB at the end "
        f"(peak {peak / 2**20:.1f} MiB, {len(samples)} samples): growth {growth * 100:+.2f} %"
    )
    assert sum(int(str(v)) for v in errors.values()) == 0, errors
    assert grpc_load.errors == [], grpc_load.errors[:5]
    assert rest_requests > 0 and grpc_load.calls > 0
    assert growth < MAX_GROWTH, f"resident memory grew {growth * 100:.2f} % (limit {MAX_GROWTH * 100:.0f} %)"
    assert server.process.poll() is None, "the server died"
