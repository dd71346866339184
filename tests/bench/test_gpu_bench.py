"""The GPU benchmark's plumbing on a CPU: its matrix and targets as pure checks, NVML degrading to
"no GPU", and one short real run (tiny model, two configurations) writing its JSON and PNG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench import gpu_report
from tests.bench.gpu_report import STANDARD_MATRIX, GpuConfig, GpuRun, full_matrix, gpu_checks
from tests.bench.nvml import GpuSampler, GpuStats, summarize
from tests.bench.report import MISSED, NOT_AVAILABLE, PASS, LoadResult

REPO = Path(__file__).resolve().parents[2]


def run(config: GpuConfig, connections: int, rps: float, p50: float = 1.0, util: float | None = None) -> GpuRun:
    load = LoadResult(requests=int(rps * 10), duration_s=10.0, p50_ms=p50, p99_ms=2 * p50, mean_ms=p50, max_ms=3 * p50)
    stats = None if util is None else GpuStats(util, util, 4096.0, 50)
    return GpuRun(config, connections, load, stats)


def test_standard_matrix_covers_every_axis_of_the_issue() -> None:
    configs = STANDARD_MATRIX
    assert len({c.key for c in configs}) == len(configs)
    assert {c.batching for c in configs} == {True, False}
    assert {c.workers for c in configs} == {1, 2, 4}
    assert {c.half for c in configs} == {True, False}
    assert {c.graphs for c in configs} == {True, False}
    assert {n for c in configs for n in c.connections} == {1, 64, 256}
    # The targets' sides are all there: FP16 one worker and several at 256, graphs and eager at 1.
    assert GpuConfig(half=True, connections=(1, 64, 256)) in configs
    assert GpuConfig(half=True, graphs=True, connections=(1, 64, 256)) in configs
    assert any(c.half and c.workers == 4 for c in configs)


def test_full_matrix_is_every_combination() -> None:
    configs = full_matrix()
    assert len(configs) == 2 * 3 * 2 * 2
    assert len({c.key for c in configs}) == len(configs)


def test_config_names_arguments_and_model_variant() -> None:
    config = GpuConfig(batching=False, workers=4, half=True, graphs=True)
    assert config.key == "fp16-w4-nobatch-graphs"
    assert config.label == "FP16, 4 workers, batching off, CUDA graphs"
    assert config.predictor_args() == ["--workers", "4", "--no-batching"]
    assert config.variant == "fp16-graphs"  # FP16 and CUDA graphs are the manifest's, not flags
    assert GpuConfig().predictor_args() == ["--workers", "1"]


def test_targets_pass_and_miss() -> None:
    single, four = GpuConfig(half=True), GpuConfig(half=True, workers=4)
    eager, graphs = GpuConfig(half=True), GpuConfig(half=True, graphs=True)
    runs = [
        run(single, 256, 4_000, util=40),
        run(four, 256, 13_000, util=85),
        run(GpuConfig(half=True, workers=2), 256, 8_000, util=70),
        run(eager, 1, 300, p50=3.0),
        run(graphs, 1, 600, p50=1.2),
    ]
    checks = {c.name.split(" (")[0]: c for c in gpu_checks(runs)}
    speedup = checks["FP16 256 conns: workers/1"]
    assert speedup.value == pytest.approx(3.25) and speedup.status == PASS
    busy = checks["FP16 256 conns: GPU busy in that run"]
    assert busy.value == 85 and busy.status == PASS
    latency = checks["batch-1 p50 at 1 conn: CUDA graphs/eager"]
    assert latency.value == pytest.approx(0.4) and latency.status == PASS

    # A faster run that leaves the GPU idler does not hide one that does both.
    runs.append(run(GpuConfig(half=True, workers=4, graphs=True), 256, 20_000, util=35))
    checks = {c.name: c for c in gpu_checks(runs)}
    both = checks["FP16 256 conns: workers/1 (FP16, 4 workers, batching on, eager)"]
    assert both.value == pytest.approx(3.25) and both.status == PASS
    assert checks["FP16 256 conns: GPU busy in that run"].value == 85
    runs.pop()

    runs[1] = run(four, 256, 10_000, util=60)  # four workers at 2.5x, the GPU 60 % busy
    checks = {c.name.split(" (")[0]: c for c in gpu_checks(runs)}
    assert checks["FP16 256 conns: workers/1"].status == MISSED
    assert checks["FP16 256 conns: GPU busy in that run"].status == MISSED


def test_targets_not_measured_are_not_available() -> None:
    checks = gpu_checks([run(GpuConfig(half=True), 64, 1000)])
    assert [c.status for c in checks] == [NOT_AVAILABLE] * 3
    broken = GpuRun(GpuConfig(half=True), 256, status="error", note="did not start")
    assert all(c.status == NOT_AVAILABLE for c in gpu_checks([broken, run(GpuConfig(half=True, workers=4), 256, 9)]))


def test_table_shows_gpu_figures_and_the_ratio_to_one_worker() -> None:
    runs = [run(GpuConfig(half=True), 256, 4_000, util=40), run(GpuConfig(half=True, workers=4), 256, 12_000, util=90)]
    runs.append(GpuRun(GpuConfig(workers=2), 64, status="not run", note="past --deadline-s"))
    lines = gpu_report.format_runs(runs).splitlines()
    assert lines[0].split()[:2] == ["configuration", "conns"]
    assert "4,000" in lines[2] and "1.00x" in lines[2] and lines[2].rstrip().endswith("ok")
    assert "12,000" in lines[3] and "3.00x" in lines[3] and " 90 " in lines[3] and "4,096" in lines[3]
    assert lines[4].rstrip().endswith("not run: past --deadline-s")


def test_summarize_samples() -> None:
    stats = summarize([(50.0, 1000.0), (100.0, 3000.0), (60.0, 2000.0)])
    assert stats == GpuStats(70.0, 100.0, 3000.0, 3)
    assert summarize([]) is None


def test_nvml_degrades_to_no_gpu() -> None:
    sampler = GpuSampler()
    if sampler.available:
        pytest.skip("a GPU is here: the no-GPU path is for CPU machines")
    assert sampler.reason  # says why: the package, the driver library, or no device
    assert sampler.describe() == {"available": False, "reason": sampler.reason}
    with sampler.sampling() as samples:
        pass
    assert samples == []


def test_a_short_run_on_the_cpu_writes_json_and_png(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREDICTOR_")}
    command = [
        sys.executable,
        "-m",
        "tests.bench",
        "--gpu",
        "--smoke",
        "--device",
        "cpu",
        "--results-dir",
        str(tmp_path),
    ]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (json_path,) = tmp_path.glob("gpu-bench-*.json")
    assert json_path.with_suffix(".png").stat().st_size > 10_000
    doc = json.loads(json_path.read_text())
    assert doc["ok"] and doc["problems"] == []
    assert [(r["config"], r["connections"], r["status"]) for r in doc["runs"]] == [
        ("fp32-w1-batch-eager", 1, "ok"),  # one connection under two wrk threads: wrk gets one
        ("fp32-w1-batch-eager", 4, "ok"),
        ("fp16-w2-batch-graphs", 4, "ok"),
    ]
    assert all(r["load"]["rps"] > 0 and r["load"]["non_2xx"] == 0 for r in doc["runs"])
    assert doc["runs"][2]["workers"] == 2
    if not doc["environment"]["gpu"]["available"]:
        assert doc["environment"]["gpu"]["reason"]
        assert all(r["gpu"] is None for r in doc["runs"])
    assert {c["status"] for c in doc["checks"]} == {NOT_AVAILABLE}  # no FP16 one-worker or 256-connection runs
    assert "targets (issue 11, GPU)" in result.stdout


def test_carried_wheels_leave_out_what_the_gpu_machine_has() -> None:
    from tests.bench.carry import wanted

    dists = {"kserve": "0.21.0", "torch": "2.13.0", "nvidia-cublas": "13.1", "Pydantic_Core": "2.50.5"}
    assert wanted({**dists, "numpy": "2.4.6", "kubernetes-validate": "1.37.0"}) == [
        "kserve==0.21.0",
        "pydantic-core==2.50.5",
    ]


def test_carry_lists_what_a_worker_imports() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench.carry"], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    names = {line.split("==")[0] for line in result.stdout.split()}
    assert {"kserve", "fastapi", "uvicorn", "grpcio", "pydantic", "orjson", "prometheus-client", "uvloop"} <= names
    assert not names & {"torch", "numpy", "pandas", "servekit", "kubernetes-validate"}
    assert not any(name.startswith("nvidia-") for name in names)
