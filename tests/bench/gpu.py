"""``python -m tests.bench --gpu``: the predictor on a GPU with a transformer-class model (issue 11).

It builds the example transformer text classifier (``python -m predictor.examples transformer``:
random weights, 128 tokens per request, nothing downloaded), makes the four manifest variants
(FP32/FP16 x eager/CUDA graphs), then for each configuration of the matrix (gpu_report.py) starts
``python -m predictor`` with its workers and batching, checks one answer, and drives it with the
same bounded load as the CPU benchmark (wrk where installed) at each of its connection counts,
sampling the GPU's utilisation and memory through NVML during every measured window.

Prints progress on stderr, the table and the targets on stdout; writes gpu-bench-<time>.json and
.png (and the servers' logs) under --results-dir. A configuration that would start after
--deadline-s is recorded as not run, so a run on a lent machine ends in time with its results.
Exit codes as the CPU benchmark: 0 when everything ran (targets met or not), 1 when something
broke, 130 on Ctrl-C. With --device cpu and --smoke it runs the plumbing in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench import load as loadgen
from tests.bench.gpu_report import (
    SMOKE_MATRIX,
    STANDARD_MATRIX,
    WORKERS_MATRIX,
    GpuConfig,
    GpuRun,
    format_runs,
    full_matrix,
    gpu_checks,
)
from tests.bench.nvml import GpuSampler, GpuStats, summarize
from tests.bench.report import Check, LoadResult, format_checks
from tests.bench.run import (
    REPO,
    BenchError,
    check_answer,
    environment,
    fail_if_exited,
    fail_on_errors,
    make_example,
    progress,
)
from tests.bench.servers import Server, ServerError, free_ports, running

MODEL = "textclf"
# The model: 4 layers, width 256, 128 tokens. --smoke shrinks it to run on a CPU in seconds.
SMOKE_MODEL_OPTIONS = ("--layers", "1", "--width", "32", "--length", "16")


@dataclass
class GpuContext:
    args: argparse.Namespace
    work: Path
    tool: str
    sampler: GpuSampler
    model_dirs: dict[str, Path] = field(default_factory=dict)
    body: Path | None = None
    started: float = field(default_factory=time.perf_counter)
    problems: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench --gpu",
        description="GPU benchmark: batching, workers, FP16 and CUDA graphs on a transformer-class model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--device", default="cuda", help="the predictor's --device (cpu runs the plumbing only)")
    p.add_argument(
        "--matrix",
        choices=["standard", "full", "workers"],
        default="standard",
        help="which configurations run (workers: 1, 4 and 8 workers at 256 connections, the workers target alone)",
    )
    p.add_argument("--duration", type=float, default=5.0, help="seconds of measured load per connection count")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured load before each measurement")
    p.add_argument("--threads", type=int, default=4, help="wrk threads")
    p.add_argument(
        "--deadline-s", type=float, help="start no configuration this many seconds after the start (none: no limit)"
    )
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds a server may take to be ready")
    p.add_argument("--load-tool", choices=["auto", "wrk", "python"], default="auto", help="auto: wrk if installed")
    p.add_argument("--results-dir", type=Path, default=REPO / "results", help="where JSON, PNG and logs go")
    p.add_argument("--smoke", action="store_true", help="a tiny model, two configurations, 1 s loads: the plumbing")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    args = p.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.threads < 1 or (args.deadline_s or 1) <= 0:
        p.error("--duration and --deadline-s must be > 0, --warmup >= 0 and --threads >= 1")
    if args.smoke:
        args.duration, args.warmup, args.threads = 1.0, 0.5, 2
    return args


def matrix(args: argparse.Namespace) -> list[GpuConfig]:
    if args.smoke:
        return list(SMOKE_MATRIX)
    return {"full": full_matrix(), "workers": list(WORKERS_MATRIX)}.get(args.matrix, list(STANDARD_MATRIX))


# --------------------------------------------------------------------------- models and the body


def prepare(ctx: GpuContext) -> None:
    """The example model, its four manifest variants, and one request body of random token ids."""
    from predictor.modeldir.spec import dump_spec, load_spec

    base = ctx.work / "models" / MODEL
    options = SMOKE_MODEL_OPTIONS if ctx.args.smoke else ()
    progress(f"building the transformer example model ({' '.join(options) or 'the issue-11 size'})")
    make_example(sys.executable, "transformer", base, ctx.work / "logs" / "examples.log", *options)
    spec = load_spec(base)
    for half in (False, True):
        for graphs in (False, True):
            variant = GpuConfig(half=half, graphs=graphs).variant
            target = ctx.work / "models" / variant
            target.mkdir()
            os.link(base / spec.artifact.path, target / spec.artifact.path)  # the same file, checked once each
            runtime = spec.runtime.model_copy(update={"half_precision": half, "cuda_graphs": graphs})
            dump_spec(spec.model_copy(update={"runtime": runtime}), target)
            ctx.model_dirs[variant] = target
    tokens = spec.inputs[0]
    length = tokens.shape[1]
    ids = [random.Random(0).randrange(1000) for _ in range(length)]
    body = {"inputs": [{"name": tokens.name, "datatype": tokens.datatype, "shape": [1, length], "data": ids}]}
    ctx.body = ctx.work / "body.json"
    ctx.body.write_text(json.dumps(body, separators=(",", ":")))


# --------------------------------------------------------------------------- one configuration


def predictor(ctx: GpuContext, config: GpuConfig) -> Server:
    http_port, grpc_port = free_ports(2)
    argv = [
        sys.executable, "-m", "predictor",
        "--model_dir", str(ctx.model_dirs[config.variant]),
        "--http_port", str(http_port),
        "--grpc_port", str(grpc_port),
        "--device", ctx.args.device,
        *config.predictor_args(),
    ]  # fmt: skip
    log = ctx.work / "logs" / f"{config.key}.log"
    return Server(config.key, argv, http_port, f"/v2/models/{MODEL}/ready", log, cwd=REPO)


def measure(ctx: GpuContext, server: Server, connections: int) -> tuple[LoadResult, GpuStats | None]:
    """Warm-up, then the measured load with the GPU sampled throughout."""
    a, path, body = ctx.args, f"/v2/models/{MODEL}/infer", ctx.body
    assert body is not None
    threads = min(a.threads, connections)  # wrk refuses more threads than connections
    if a.warmup > 0:
        warm = loadgen.run_load(ctx.tool, server.port, path, body, loadgen.LoadSpec(connections, a.warmup, threads))
        fail_if_exited(server, "in warm-up")
        fail_on_errors(server.name, warm, "in warm-up")
    with ctx.sampler.sampling() as samples:
        spec = loadgen.LoadSpec(connections, a.duration, threads)
        result = loadgen.run_load(ctx.tool, server.port, path, body, spec)
    fail_if_exited(server, "under load")
    fail_on_errors(server.name, result, "under load")
    if result.requests == 0:
        raise BenchError(f"{server.name}: no request completed at {connections} connections")
    return result, summarize(samples)


def run_config(ctx: GpuContext, config: GpuConfig) -> list[GpuRun]:
    runs = [GpuRun(config, c) for c in config.connections]
    server = predictor(ctx, config)
    progress(f"{config.label}: starting")
    try:
        with running(server, timeout_s=ctx.args.startup_timeout):
            assert ctx.body is not None
            check_answer(server, f"/v2/models/{MODEL}/infer", ctx.body, None, ("label",))
            progress(f"{config.label}: ready in {server.startup_s:.1f} s")
            for run in runs:
                run.load, run.gpu = measure(ctx, server, run.connections)
                run.startup_s = server.startup_s
                busy = f", GPU {run.gpu.util_mean:.0f} % busy" if run.gpu else ""
                progress(
                    f"  {run.connections:>3} connections: {run.load.rps:,.0f} req/s, p50 {run.load.p50_ms:.2f} ms{busy}"
                )
    except (ServerError, BenchError, RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        note = str(exc).splitlines()[0]
        for run in runs:
            if run.load is None:
                run.status, run.note = "error", note
        ctx.problems.append(f"{config.label}: {exc}")
        progress(f"{config.label}: ERROR {exc}")
    return runs


# --------------------------------------------------------------------------- output


def write_plot(path: Path, runs: list[GpuRun], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in runs if r.connections > 1]
    labels = [f"{r.config.label.replace(', ', chr(10))}\n{r.connections} conns" for r in shown]
    panels = [
        ("requests / s", [r.load.rps if r.ok and r.load else 0.0 for r in shown], ",.0f"),
        ("p99 latency, ms", [r.load.p99_ms if r.ok and r.load else 0.0 for r in shown], ".1f"),
    ]
    if any(r.gpu for r in shown):
        panels += [
            ("GPU busy, % (NVML)", [r.gpu.util_mean if r.gpu else 0.0 for r in shown], ".0f"),
            ("GPU memory used, MiB", [r.gpu.memory_used_mib_max if r.gpu else 0.0 for r in shown], ",.0f"),
        ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8, 1.1 * len(shown)), 3.2 * len(panels)), squeeze=False)
    for ax, (ylabel, values, spec) in zip(axes[:, 0], panels, strict=True):
        colors = ["#1f77b4" if r.connections < 256 else "#ff7f0e" for r in shown]
        bars = ax.bar(range(len(values)), values, color=colors)
        for bar, value in zip(bars, values, strict=True):
            where = (bar.get_x() + bar.get_width() / 2, bar.get_height())
            ax.annotate(format(value, spec), where, ha="center", va="bottom", fontsize=7)
        ax.set_ylabel(ylabel)
        ax.set_xticks(range(len(values)), labels if ax is axes[-1, 0] else [""] * len(values), fontsize=6)
        ax.margins(y=0.15)
    axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(ctx: GpuContext, runs: list[GpuRun], checks: list[Check]) -> dict[str, Any]:
    a = ctx.args
    print(
        f"\ntransformer text classifier ({'smoke size' if a.smoke else '4 layers, 128 tokens'}), v2 REST JSON, "
        f"device {a.device}, {a.duration:g} s after {a.warmup:g} s warm-up, load: {ctx.tool} -t{a.threads}"
    )
    gpu = ctx.sampler.describe()
    print(
        f"GPU: {gpu.get('name', 'none')} " + (f"(driver {gpu['driver']})" if gpu["available"] else f"({gpu['reason']})")
    )
    print(format_runs(runs))
    print("\ntargets (issue 11, GPU)")
    print(format_checks(checks))
    if ctx.problems:
        print("\nBROKEN:")
        for problem in ctx.problems:
            print(f"  {problem.splitlines()[0]}")
    sys.stdout.flush()
    return {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
        "environment": {**environment(ctx.tool), "gpu": gpu},
        "runs": [r.to_dict() for r in runs],
        "checks": [c.to_dict() for c in checks],
        "problems": ctx.problems,
        "ok": not ctx.problems,
    }


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = args.results_dir.resolve()
    ctx = GpuContext(args, results / f"gpu-bench-{stamp}", loadgen.pick_tool(args.load_tool), GpuSampler())
    ctx.work.mkdir(parents=True, exist_ok=True)
    gpu = ctx.sampler.describe()
    progress(f"load tool {ctx.tool}; GPU: {gpu.get('name') or 'none, ' + gpu['reason']}; work folder {ctx.work}")
    runs: list[GpuRun] = []
    try:
        prepare(ctx)
        for config in matrix(args):
            if args.deadline_s is not None and time.perf_counter() - ctx.started > args.deadline_s:
                runs += [GpuRun(config, c, status="not run", note="past --deadline-s") for c in config.connections]
                continue
            runs += run_config(ctx, config)
    except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress("interrupted; servers stopped")
        return 130
    finally:
        ctx.sampler.close()
    doc = {"timestamp": stamp, **report(ctx, runs, gpu_checks(runs))}
    json_path = results / f"gpu-bench-{stamp}.json"
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    progress(f"wrote {json_path}")
    if not args.no_plot:
        png_path = results / f"gpu-bench-{stamp}.png"
        gpu = ctx.sampler.describe()
        where = gpu["name"] if gpu["available"] else f"device {args.device}, no GPU figures: {gpu['reason']}"
        title = f"transformer text classifier, v2 REST JSON, {where}; blue: up to 64 connections, orange: 256"
        write_plot(png_path, runs, title)
        progress(f"wrote {png_path}")
    return 1 if ctx.problems else 0
