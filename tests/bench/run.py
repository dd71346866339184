"""``python -m tests.bench``: the servekit benchmark (issue 3).

In one run on this machine it starts, one at a time and each alone:

  (a) this predictor (``python -m predictor``) serving the iris example model,
  (b) a plain custom KServe predictor written the way KServe's docs show,
  (c) MLServer + mlserver-sklearn in a virtualenv of its own (skipped when it cannot be installed),
  (d) a bare uvicorn + orjson ASGI app doing the same work (the practical limit),

all serving the same joblib file, and drives each with the same bounded load (wrk where
installed, else an asyncio generator): 1x4 FP32 v2 JSON requests on keep-alive connections to
127.0.0.1 for a fixed time. Then the predictor with the torch example model, batching on and
off, at 32 connections; then the predictor on iris with ``--workers 1`` and ``2`` (issue 11),
checking its request count against the load tool's; then its start-up time for both example
models. ``--gpu`` runs the GPU benchmark instead (tests/bench/gpu.py), ``--formats`` the model
formats' runtimes against their frameworks (tests/bench/formats.py).

Prints progress on stderr and the tables on stdout; writes results/bench-<time>.json and .png.
Exits 0 when everything ran, whether or not the targets were met (MISSED is printed), 1 when
something broke (a server did not start, answered wrongly or answered non-2xx under load),
130 on Ctrl-C. Every server is stopped however the run ends.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.bench import load as loadgen
from tests.bench import mlserver_env
from tests.bench.report import (
    Check,
    LoadResult,
    TargetResult,
    busy_fraction,
    combine_rounds,
    cpu_times,
    format_checks,
    format_rows,
    median,
    monitoring_checks,
    requests_total,
    sklearn_checks,
    startup_checks,
    torch_checks,
    workers_checks,
)
from tests.bench.servers import Server, ServerError, free_ports, http_request, post_json, running

REPO = Path(__file__).resolve().parents[2]
SKLEARN_MODEL = "iris"
TORCH_MODEL = "digits"
ALL_TARGETS = ("a", "b", "c", "d")
LABELS = {
    "a": "(a) servekit predictor",
    "b": "(b) plain KServe (docs)",
    "c": "(c) MLServer+sklearn",
    "d": "(d) bare ASGI+orjson",
}

_T0 = time.perf_counter()


def progress(msg: str) -> None:
    print(f"[bench {time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """Something broke: the run goes on with the other targets, then exits non-zero."""


@dataclass
class Context:
    args: argparse.Namespace
    python: str
    work: Path
    tool: str
    sklearn_dir: Path
    sklearn_body: Path
    sklearn_expected: int
    torch_dir: Path | None = None
    torch_body: Path | None = None
    torch_expected: int | None = None
    profiled_dir: Path | None = None  # iris with a drift profile, made by the first monitoring run
    problems: list[str] = field(default_factory=list)
    busy_warnings: dict[str, float] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.work / "logs"


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description="Benchmark the servekit predictor against plain KServe, MLServer and a bare ASGI app.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds of measured load per target")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load before each measurement")
    p.add_argument("--connections", type=int, default=8, help="concurrent connections for the sklearn targets")
    p.add_argument("--torch-connections", type=int, default=32, help="concurrent connections for the torch runs")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument(
        "--targets",
        default=",".join(ALL_TARGETS),
        help="which sklearn targets to run, comma-separated from a,b,c,d",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="interleaved rounds of every target; each row is the round with the median req/s",
    )
    p.add_argument("--skip-torch", action="store_true", help="skip the torch batching on/off runs")
    p.add_argument("--skip-workers", action="store_true", help="skip the --workers 1 and 2 runs")
    p.add_argument(
        "--skip-monitoring", action="store_true", help="skip the iris runs with monitoring on and off (issue 20)"
    )
    p.add_argument(
        "--gpu",
        action="store_true",
        help="run the GPU benchmark instead (issue 11); it has flags of its own: --gpu --help",
    )
    p.add_argument(
        "--formats",
        action="store_true",
        help="run the model formats' benchmark instead (issue 19); flags of its own: --formats --help",
    )
    p.add_argument(
        "--startup-runs",
        type=int,
        default=3,
        help="predictor spawns per example model for start-up (0 skips)",
    )
    p.add_argument("--load-tool", choices=["auto", "wrk", "python"], default="auto", help="auto: wrk if installed")
    p.add_argument("--results-dir", type=Path, default=REPO / "results", help="where JSON, PNG and logs go")
    p.add_argument("--no-mlserver-install", action="store_true", help="use MLServer only if its venv already exists")
    p.add_argument(
        "--predictor-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for each predictor start, repeatable (e.g. --predictor-arg=--max_batch_size=64)",
    )
    p.add_argument("--quick", action="store_true", help="a short smoke run: 3 s load, 1 s warm-up, 1 start-up spawn")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.startup_runs = 3.0, 1.0, min(args.startup_runs, 1)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [t for t in targets if t not in ALL_TARGETS]
    if bad or not targets:
        p.error(f"--targets takes a comma-separated list from a,b,c,d, got {args.targets!r}")
    args.targets = [t for t in ALL_TARGETS if t in targets]
    if args.duration <= 0 or args.warmup < 0 or args.connections < 1 or args.torch_connections < 1:
        p.error("--duration must be > 0, --warmup >= 0 and connections >= 1")
    if args.rounds < 1 or args.startup_runs < 0:
        p.error("--rounds must be >= 1 and --startup-runs >= 0")
    return args


# --------------------------------------------------------------------------- models and bodies


def predictor_available() -> bool:
    return (REPO / "predictor" / "__main__.py").is_file()


def examples_available() -> bool:
    return (REPO / "predictor" / "examples" / "__main__.py").is_file()


def make_example(python: str, kind: str, out: Path, log: Path, *options: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as f:
        rc = subprocess.run(
            [python, "-m", "predictor.examples", kind, "--out", str(out), *options],
            cwd=REPO,
            stdout=f,
            stderr=subprocess.STDOUT,
            timeout=600,
            check=False,
        ).returncode
    if rc < 0:
        raise BenchError(f"python -m predictor.examples {kind} was killed by signal {-rc} from outside the benchmark")
    if rc != 0:
        raise BenchError(f"python -m predictor.examples {kind} failed with code {rc}; see {log}")


def fit_iris_fallback(out: Path) -> None:
    """Until predictor.examples exists: the same estimator, fitted the same way, in the same file name."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(iris.data, iris.target), out / "model.joblib")


def v2_body(name: str, row: list[float]) -> bytes:
    body = {"inputs": [{"name": name, "shape": [1, len(row)], "datatype": "FP32", "data": row}]}
    return json.dumps(body, separators=(",", ":")).encode()


def prepare(args: argparse.Namespace, work: Path, tool: str) -> Context:
    import joblib
    import numpy as np
    from sklearn.datasets import load_digits, load_iris

    python = sys.executable
    models = work / "models"
    sk_dir = models / SKLEARN_MODEL
    if examples_available():
        progress("making the iris example model with python -m predictor.examples sklearn")
        make_example(python, "sklearn", sk_dir, work / "logs" / "examples.log")
    elif "a" in args.targets:
        raise BenchError("predictor/examples/__main__.py is missing, so target (a) cannot run")
    else:
        progress("predictor.examples is not there yet: fitting LogisticRegression(max_iter=1000) on iris here")
        fit_iris_fallback(sk_dir)

    row = [float(v) for v in load_iris().data[0]]
    sk_body = work / "iris-body.json"
    sk_body.write_bytes(v2_body("features", row))
    estimator = joblib.load(sk_dir / "model.joblib")
    expected = int(estimator.predict(np.asarray([row], dtype=np.float32))[0])
    ctx = Context(args, python, work, tool, sk_dir, sk_body, expected)

    if not args.skip_torch or args.startup_runs > 0:
        if not examples_available():
            raise BenchError("predictor/examples/__main__.py is missing, so the torch runs cannot run")
        progress("making the digits example model with python -m predictor.examples torch")
        ctx.torch_dir = models / TORCH_MODEL
        make_example(python, "torch", ctx.torch_dir, work / "logs" / "examples.log")
        digits = load_digits()
        ctx.torch_body = work / "digits-body.json"
        ctx.torch_body.write_bytes(v2_body("pixels", [float(v) for v in digits.data[0]]))
        ctx.torch_expected = int(digits.target[0])
    return ctx


# --------------------------------------------------------------------------- servers


def predictor_server(ctx: Context, model_dir: Path, model: str, tag: str, extra: list[str]) -> Server:
    http_port, grpc_port = free_ports(2)
    argv = [
        ctx.python,
        "-m",
        "predictor",
        "--model_dir",
        str(model_dir),
        "--http_port",
        str(http_port),
        "--grpc_port",
        str(grpc_port),
        *extra,
        *ctx.args.predictor_arg,
    ]
    return Server(tag, argv, http_port, f"/v2/models/{model}/ready", ctx.logs / f"{tag}.log", cwd=REPO)


def plain_kserve_server(ctx: Context) -> Server:
    http_port, grpc_port = free_ports(2)
    argv = [
        ctx.python,
        "-m",
        "tests.bench.plain_kserve",
        "--model_dir",
        str(ctx.sklearn_dir),
        "--model_name",
        SKLEARN_MODEL,
        "--http_port",
        str(http_port),
        "--grpc_port",
        str(grpc_port),
    ]
    return Server("plain-kserve", argv, http_port, f"/v2/models/{SKLEARN_MODEL}/ready", ctx.logs / "b.log", cwd=REPO)


def bare_asgi_server(ctx: Context) -> Server:
    (port,) = free_ports(1)
    argv = [
        ctx.python,
        "-m",
        "tests.bench.bare_asgi",
        "--model_dir",
        str(ctx.sklearn_dir),
        "--model_name",
        SKLEARN_MODEL,
        "--port",
        str(port),
    ]
    return Server("bare-asgi", argv, port, f"/v2/models/{SKLEARN_MODEL}/ready", ctx.logs / "d.log", cwd=REPO)


def mlserver_server(ctx: Context, exe: Path) -> Server:
    http_port, grpc_port, metrics_port = free_ports(3)
    repo = mlserver_env.write_model_repository(
        ctx.work / "mlserver-models",
        SKLEARN_MODEL,
        ctx.sklearn_dir / "model.joblib",
        http_port,
        grpc_port,
        metrics_port,
    )
    argv = [str(exe), "start", str(repo)]
    return Server("mlserver", argv, http_port, f"/v2/models/{SKLEARN_MODEL}/ready", ctx.logs / "c.log", cwd=ctx.work)


# --------------------------------------------------------------------------- one target


def output_value(answer: Any, names: tuple[str, ...]) -> Any:
    if not isinstance(answer, dict):
        return None
    for out in answer.get("outputs", []):
        if out.get("name") in names:
            data = out.get("data")
            return data[0] if isinstance(data, list) and data else None
    return None


def check_answer(server: Server, path: str, body: Path, expected: int | None, names: tuple[str, ...]) -> int:
    status, answer = post_json(server.port, path, body.read_bytes())
    if status != 200:
        raise BenchError(f"{server.name}: the first request answered {status}: {str(answer)[:300]}")
    label = output_value(answer, names)
    if label is None:
        raise BenchError(f"{server.name}: no {'/'.join(names)} output in {str(answer)[:300]}")
    if expected is not None and int(label) != expected:
        raise BenchError(f"{server.name}: label {label}, but the model itself predicts {expected}")
    return int(label)


def fail_on_errors(name: str, result: LoadResult, phase: str) -> None:
    if result.non_2xx or result.socket_errors:
        raise BenchError(f"{name}: {result.non_2xx} non-2xx responses, {result.socket_errors} socket errors {phase}")


def fail_if_exited(server: Server, phase: str) -> None:
    code = server.proc.poll() if server.proc is not None else None
    if code is not None:
        raise BenchError(
            f"{server.name} exited with code {code} {phase}, before the benchmark stopped it; "
            f"if its log ({server.log_path}) ends in a clean shutdown, something else on the machine "
            "signalled it\n" + server.log_tail(8)
        )


def drive(ctx: Context, server: Server, path: str, body: Path, connections: int) -> tuple[int, LoadResult]:
    """Warm-up, then the measured load: the warm-up's completed requests, and the measured result."""
    a = ctx.args
    warm_requests = 0
    if a.warmup > 0:
        spec = loadgen.LoadSpec(connections, a.warmup, a.threads)
        warm = loadgen.run_load(ctx.tool, server.port, path, body, spec)
        fail_if_exited(server, "in warm-up")
        fail_on_errors(server.name, warm, "in warm-up")
        warm_requests = warm.requests
    spec = loadgen.LoadSpec(connections, a.duration, a.threads)
    result = loadgen.run_load(ctx.tool, server.port, path, body, spec)
    fail_if_exited(server, "under load")
    if result.requests == 0:
        raise BenchError(f"{server.name}: no request completed under load")
    fail_on_errors(server.name, result, "under load")
    return warm_requests, result


def requests_counted(server: Server) -> float:
    """The server's own count of answered inference requests (servekit_requests_total, all labels)."""
    status, text = http_request(server.port, "GET", "/metrics")
    if status != 200:
        raise BenchError(f"{server.name}: /metrics answered {status}")
    return requests_total(text.decode())


BUSY_WARNING = 0.25


def machine_busy(seconds: float = 1.0) -> float | None:
    """How busy the CPUs are with work that is not ours (no server of ours runs when this is called)."""
    try:
        before = cpu_times(Path("/proc/stat").read_text())
        time.sleep(seconds)
        return busy_fraction(before, cpu_times(Path("/proc/stat").read_text()))
    except (OSError, ValueError):
        return None


def bench_target(
    ctx: Context,
    key: str,
    label: str,
    server: Server,
    model: str,
    body: Path,
    expected: int | None,
    names: tuple[str, ...],
    connections: int,
    count_requests: bool = False,
) -> TargetResult:
    """Start ``server``, check one answer, load it; with ``count_requests``, also compare the
    requests the load tool completed with those the server's /metrics counted."""
    row = TargetResult(key, label)
    path = f"/v2/models/{model}/infer"
    busy = machine_busy()
    row.extra["cpu_busy_before"] = None if busy is None else round(busy, 3)
    if busy is not None and busy > BUSY_WARNING:
        ctx.busy_warnings[label] = max(busy, ctx.busy_warnings.get(label, 0.0))
        progress(f"{label}: WARNING the CPUs were {busy:.0%} busy with other work before it started")
    try:
        progress(f"{label}: starting ({' '.join(server.argv[1:4])} ...)")
        with running(server):
            row.startup_s = server.startup_s
            progress(f"{label}: ready in {server.startup_s:.2f} s on port {server.port}; checking one answer")
            counted_before = requests_counted(server) if count_requests else 0.0
            row.extra["label_answered"] = check_answer(server, path, body, expected, names)
            a = ctx.args
            progress(f"{label}: {a.warmup:g} s warm-up + {a.duration:g} s load, {connections} connections")
            warm_requests, row.load = drive(ctx, server, path, body, connections)
            if count_requests:
                row.extra["client_completed"] = 1 + warm_requests + row.load.requests
                row.extra["server_counted"] = int(requests_counted(server) - counted_before)
        progress(f"{label}: {row.load.rps:,.0f} req/s, p50 {row.load.p50_ms:.2f} ms, p99 {row.load.p99_ms:.2f} ms")
    except (ServerError, BenchError, RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        row.status, row.note, row.load = "error", str(exc).splitlines()[0], None
        ctx.problems.append(f"{label}: {exc}")
        progress(f"{label}: ERROR {exc}")
    return row


def run_sklearn(ctx: Context) -> dict[str, TargetResult]:
    rows: dict[str, TargetResult] = {}
    for key in ctx.args.targets:
        label = LABELS[key]
        if key == "a":
            if not predictor_available():
                rows[key] = TargetResult(key, label, "error", note="predictor/__main__.py is missing")
                ctx.problems.append(f"{label}: predictor/__main__.py is missing")
                continue
            server = predictor_server(ctx, ctx.sklearn_dir, SKLEARN_MODEL, "a", [])
            names: tuple[str, ...] = ("label",)
        elif key == "b":
            server, names = plain_kserve_server(ctx), ("label",)
        elif key == "c":
            progress("(c) MLServer: preparing its virtualenv (first run installs it with pip, about a minute)")
            exe, why = mlserver_env.ensure_venv(ctx.logs / "mlserver-install.log", not ctx.args.no_mlserver_install)
            progress(f"(c) MLServer: {why}")
            if exe is None:
                rows[key] = TargetResult(key, label, "not available", note=why)
                continue
            server, names = mlserver_server(ctx, exe), ("predict",)
        else:
            server, names = bare_asgi_server(ctx), ("label",)
        rows[key] = bench_iris(ctx, key, label, server, names)
    return rows


def bench_iris(
    ctx: Context, key: str, label: str, server: Server, names: tuple[str, ...], count_requests: bool = False
) -> TargetResult:
    """bench_target with the iris model, its body and its expected label, at --connections."""
    body, expected, connections = ctx.sklearn_body, ctx.sklearn_expected, ctx.args.connections
    return bench_target(ctx, key, label, server, SKLEARN_MODEL, body, expected, names, connections, count_requests)


def run_torch(ctx: Context) -> dict[str, TargetResult]:
    assert ctx.torch_dir is not None and ctx.torch_body is not None
    rows: dict[str, TargetResult] = {}
    for key, label, extra in (
        ("on", "torch batching on", []),
        ("off", "torch batching off", ["--no-batching"]),
    ):
        server = predictor_server(ctx, ctx.torch_dir, TORCH_MODEL, f"torch-{key}", extra)
        rows[key] = bench_target(
            ctx, key, label, server, TORCH_MODEL, ctx.torch_body, None, ("label",), ctx.args.torch_connections
        )
    on, off = rows["on"], rows["off"]
    if on.ok and off.ok and on.extra["label_answered"] != off.extra["label_answered"]:
        ctx.problems.append("torch: batching on and off answered different labels for the same input")
        off.status, off.note = "error", "label differs from batching on"
    if on.ok and on.extra["label_answered"] != ctx.torch_expected:
        progress(f"torch: note: label {on.extra['label_answered']}, the digit in the data is {ctx.torch_expected}")
    return rows


def run_workers(ctx: Context) -> dict[str, TargetResult]:
    """The predictor on iris with --workers 1 and 2 (issue 11): throughput, and every request counted once."""
    rows: dict[str, TargetResult] = {}
    for count in (1, 2):
        key, label = f"w{count}", f"iris, --workers {count}"
        server = predictor_server(ctx, ctx.sklearn_dir, SKLEARN_MODEL, f"workers-{count}", ["--workers", str(count)])
        rows[key] = bench_iris(ctx, key, label, server, ("label",), count_requests=True)
    return rows


def profiled_iris(ctx: Context) -> Path:
    """A copy of the iris model directory with a drift profile of the iris data (servekit-model profile)."""
    if ctx.profiled_dir is None:
        import shutil

        import numpy as np
        from sklearn.datasets import load_iris

        target = ctx.work / "models" / "iris-profiled"
        shutil.copytree(ctx.sklearn_dir, target)
        data = ctx.work / "iris-train.npy"
        np.save(data, load_iris().data)
        command = [ctx.python, "-m", "predictor.modelcli.main", "profile", str(target), "--data", str(data)]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise BenchError(f"profiling iris failed: {result.stderr.strip()}")
        ctx.profiled_dir = target
    return ctx.profiled_dir


def run_monitoring(ctx: Context) -> dict[str, TargetResult]:
    """The predictor on iris with a drift profile, monitoring on and off (issue 20): what it costs."""
    try:
        model_dir = profiled_iris(ctx)
    except (BenchError, OSError, subprocess.TimeoutExpired) as exc:
        ctx.problems.append(f"monitoring: {exc}")
        return {}
    rows: dict[str, TargetResult] = {}
    for key, label, extra in (
        ("on", "iris, monitoring on", []),
        ("off", "iris, --no-monitoring", ["--no-monitoring"]),
    ):
        server = predictor_server(ctx, model_dir, SKLEARN_MODEL, f"monitoring-{key}", extra)
        rows[key] = bench_iris(ctx, key, label, server, ("label",))
    return rows


def measure_startup(ctx: Context) -> tuple[dict[str, float | None], dict[str, list[float]]]:
    medians: dict[str, float | None] = {}
    samples: dict[str, list[float]] = {}
    models = [(SKLEARN_MODEL, ctx.sklearn_dir)]
    if ctx.torch_dir is not None:
        models.append((TORCH_MODEL, ctx.torch_dir))
    for model, model_dir in models:
        samples[model] = []
        for i in range(ctx.args.startup_runs):
            server = predictor_server(ctx, model_dir, model, f"startup-{model}-{i}", [])
            try:
                with running(server):
                    assert server.startup_s is not None
                    samples[model].append(server.startup_s)
            except ServerError as exc:
                ctx.problems.append(f"start-up {model}: {exc}")
                progress(f"start-up {model}: ERROR {exc}")
                break
        medians[model] = median(samples[model]) if samples[model] else None
        shown = ", ".join(f"{s:.2f}" for s in samples[model])
        progress(f"start-up {model}: {shown} s -> median {_num(medians[model])} s")
    return medians, samples


def _num(v: float | None) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.2f}"


# --------------------------------------------------------------------------- output


def environment(tool: str) -> dict[str, Any]:
    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    wrk_version = None
    if tool == "wrk":
        out = subprocess.run([loadgen.wrk_path() or "wrk", "--version"], capture_output=True, text=True, check=False)
        wrk_version = (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else None
    import os

    git = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
    )
    return {
        "commit": git.stdout.strip() or None,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_tool": tool,
        "wrk": wrk_version,
        "versions": {d: version(d) for d in ("kserve", "scikit-learn", "torch", "numpy", "orjson", "uvicorn")},
        "mlserver": mlserver_env.versions(),
    }


def write_plot(
    path: Path,
    sk_rows: dict[str, TargetResult],
    torch_rows: dict[str, TargetResult],
    workers_rows: dict[str, TargetResult],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("sklearn iris, v2 REST, 8 connections", sk_rows)]
    if torch_rows:
        panels.append(("torch digits, 32 connections", torch_rows))
    if workers_rows:
        panels.append(("iris, --workers 1 and 2", workers_rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels) + 1, 4.5), squeeze=False)
    for ax, (title, rows) in zip(axes[0], panels, strict=True):
        labels = [r.label.replace(") ", ")\n", 1) for r in rows.values()]
        values = [r.load.rps if r.ok and r.load else 0.0 for r in rows.values()]
        bars = ax.bar(range(len(values)), values, color=["#1f77b4", "#7f7f7f", "#9467bd", "#2ca02c"][: len(values)])
        for bar, r in zip(bars, rows.values(), strict=True):
            text = f"{r.load.rps:,.0f}" if r.ok and r.load else r.status
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom")
        ax.set_xticks(range(len(values)), labels, fontsize=8)
        ax.set_ylabel("requests / s")
        ax.set_title(title)
        ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_report(
    ctx: Context,
    tables: dict[str, dict[str, TargetResult]],
    startup: dict[str, float | None],
    checks: list[Check],
) -> None:
    a = ctx.args
    out = sys.stdout
    sk_rows, torch_rows, workers_rows = tables["sklearn"], tables["torch"], tables["workers"]
    monitoring_rows = tables["monitoring"]
    rounds = f", median of {a.rounds} rounds" if a.rounds > 1 else ""
    print(
        f"\nsklearn iris, v2 REST JSON 1x4 FP32, {a.connections} connections, {a.threads} thread, "
        f"{a.duration:g} s after {a.warmup:g} s warm-up, load: {ctx.tool}{rounds}",
        file=out,
    )
    ratio_cols = {f"vs {k}": sk_rows.get(k) for k in ("b", "c", "d")}
    print(format_rows(list(sk_rows.values()), ratio_cols), file=out)
    if torch_rows:
        print(f"\ntorch digits, v2 REST JSON 1x64 FP32, {a.torch_connections} connections", file=out)
        print(format_rows(list(torch_rows.values()), {"vs off": torch_rows.get("off")}), file=out)
    if workers_rows:
        print(f"\npredictor on iris with --workers, {a.connections} connections", file=out)
        print(format_rows(list(workers_rows.values()), {"vs 1": workers_rows.get("w1")}), file=out)
        for row in workers_rows.values():
            if "server_counted" in row.extra:
                print(
                    f"  {row.label}: the load tool read {row.extra['client_completed']:,} answers, "
                    f"the server counted {row.extra['server_counted']:,} requests",
                    file=out,
                )
    if monitoring_rows:
        print(f"\npredictor on iris with a drift profile, {a.connections} connections", file=out)
        print(format_rows(list(monitoring_rows.values()), {"vs off": monitoring_rows.get("off")}), file=out)
    if startup:
        print(f"\npredictor start-up, spawn to ready, median of {a.startup_runs}", file=out)
        for model, s in startup.items():
            print(f"  {model:8s} {_num(s)} s", file=out)
    print("\ntargets (issues 3, 11 and 20)", file=out)
    print(format_checks(checks), file=out)
    if ctx.busy_warnings:
        print(
            "\nWARNING: other work kept the CPUs busy before "
            + ", ".join(f"{label} (up to {busy:.0%})" for label, busy in ctx.busy_warnings.items())
            + "; "
            "those figures are low and the ratios unreliable: rerun on an idle machine",
            file=out,
        )
    missed = [c.name for c in checks if c.status == "MISSED"]
    if missed:
        print(f"\nMISSED: {', '.join(missed)}", file=out)
    if ctx.problems:
        print("\nBROKEN:", file=out)
        for p in ctx.problems:
            print(f"  {p.splitlines()[0]}", file=out)
    out.flush()


# --------------------------------------------------------------------------- main


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--gpu" in argv:
        from tests.bench import gpu

        return gpu.main([a for a in argv if a != "--gpu"])
    if "--formats" in argv:
        from tests.bench import formats

        return formats.main([a for a in argv if a != "--formats"])
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    tool = loadgen.pick_tool(args.load_tool)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = args.results_dir.resolve()
    work = results / f"bench-{stamp}"
    work.mkdir(parents=True, exist_ok=True)
    progress(f"load tool: {tool}; work folder {work}")
    try:
        try:
            ctx = prepare(args, work, tool)
        except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        sk_rounds: list[dict[str, TargetResult]] = []
        torch_rounds: list[dict[str, TargetResult]] = []
        workers_rounds: list[dict[str, TargetResult]] = []
        monitoring_rounds: list[dict[str, TargetResult]] = []
        for n in range(args.rounds):
            if args.rounds > 1:
                progress(f"round {n + 1} of {args.rounds}")
            sk_rounds.append(run_sklearn(ctx))
            if not args.skip_torch:
                torch_rounds.append(run_torch(ctx))
            if not args.skip_workers:
                workers_rounds.append(run_workers(ctx))
            if not args.skip_monitoring:
                monitoring_rounds.append(run_monitoring(ctx))
        sk_rows = combine_rounds(sk_rounds)
        torch_rows = combine_rounds(torch_rounds)
        workers_rows = combine_rounds(workers_rounds)
        monitoring_rows = combine_rounds(monitoring_rounds)
        startup, startup_samples = measure_startup(ctx) if args.startup_runs > 0 else ({}, {})
    except KeyboardInterrupt:
        progress("interrupted; servers stopped")
        return 130

    checks = [*sklearn_checks(sk_rows)]
    if torch_rows:
        checks += torch_checks(torch_rows.get("on"), torch_rows.get("off"))
    if workers_rows:
        checks += workers_checks(workers_rows, args.connections)
    if monitoring_rows:
        checks += monitoring_checks(monitoring_rows)
    checks += startup_checks(startup)
    tables = {"sklearn": sk_rows, "torch": torch_rows, "workers": workers_rows, "monitoring": monitoring_rows}
    print_report(ctx, tables, startup, checks)

    doc = {
        "timestamp": stamp,
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "torch_connections": args.torch_connections,
            "threads": args.threads,
            "rounds": args.rounds,
            "targets": args.targets,
            "startup_runs": args.startup_runs,
            "predictor_args": args.predictor_arg,
        },
        "environment": environment(tool),
        "sklearn": {k: r.to_dict() for k, r in sk_rows.items()},
        "torch": {k: r.to_dict() for k, r in torch_rows.items()},
        "workers": {k: r.to_dict() for k, r in workers_rows.items()},
        "monitoring": {k: r.to_dict() for k, r in monitoring_rows.items()},
        "startup_s": {"median": startup, "samples": startup_samples},
        "checks": [c.to_dict() for c in checks],
        "problems": ctx.problems,
        "busy_warnings": {label: round(b, 3) for label, b in ctx.busy_warnings.items()},
        "ok": not ctx.problems,
    }
    json_path = results / f"bench-{stamp}.json"
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    progress(f"wrote {json_path}")
    if not args.no_plot:
        png_path = results / f"bench-{stamp}.png"
        write_plot(png_path, sk_rows, torch_rows, workers_rows)
        progress(f"wrote {png_path}")
    return 1 if ctx.problems else 0
