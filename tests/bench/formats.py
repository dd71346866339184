"""``python -m tests.bench --formats``: each model format's runtime against its framework called
directly in the same process (the limit), and each served by the predictor under load.

In-process: the example model of each format (sklearn iris, ONNX iris, XGBoost breast cancer,
LightGBM wine, all built from packaged data) is loaded with the predictor's runtime; then, in
interleaved rounds, N calls of ``runtime.predict`` and N calls of the framework's own API computing
the same outputs (label and probabilities), for 1 row and for 32 rows. The difference is what the
runtime adds. Served: ``python -m predictor`` on each model, its first answer checked against the
framework's own, then the same load as ``make bench``'s (a): 1-row v2 JSON requests on keep-alive
connections for a fixed time. For XGBoost and LightGBM, the same model served by MLServer with its
runtime for that format takes the same load (``formats_peers``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_iris, load_wine

from predictor.examples import formats as format_examples
from predictor.examples import sklearn_iris
from predictor.modeldir.spec import dump_spec, load_spec
from predictor.runtimes import ModelRuntime, load_runtime
from tests.bench import formats_peers
from tests.bench import load as loadgen
from tests.bench.servers import Server, free_ports, post_json, running

REPO = Path(__file__).resolve().parents[2]
DATA = {
    "sklearn": load_iris,
    "onnx": load_iris,
    "xgboost": load_breast_cancer,
    "lightgbm": load_wine,
    "tensorflow": load_iris,  # this process never imports torch, which cannot share one with TensorFlow
}
Direct = Callable[[np.ndarray], dict[str, np.ndarray]]


def build(kind: str, out: Path, threads: int) -> Path:
    """The example model; ``threads`` (0: the framework's default) goes into its manifest's runtime."""
    spec = sklearn_iris.build(out) if kind == "sklearn" else format_examples.build(kind, out)
    if threads:
        dump_spec(spec.model_copy(update={"runtime": spec.runtime.model_copy(update={"threads": threads})}), out)
    return out


def direct_call(kind: str, model_dir: Path) -> Direct:
    """The framework's own API on the same artifact, computing label and probabilities."""
    spec = load_spec(model_dir)
    artifact = model_dir / spec.artifact.path
    threads = spec.runtime.threads  # the same threads as the runtime, so only the runtime's own work differs
    if kind == "sklearn":
        import joblib
        import sklearn

        estimator = joblib.load(artifact)

        def sk(x: np.ndarray) -> dict[str, np.ndarray]:
            with sklearn.config_context(assume_finite=True):
                return {"label": estimator.predict(x), "probabilities": estimator.predict_proba(x)}

        return sk
    if kind == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(artifact), sess_options=options, providers=["CPUExecutionProvider"])
        names = [o.name for o in spec.outputs]
        return lambda x: dict(zip(names, session.run(names, {spec.inputs[0].name: x}), strict=True))
    if kind == "xgboost":
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(str(artifact))
        if threads:
            booster.set_param({"nthread": threads})

        def xgb(x: np.ndarray) -> dict[str, np.ndarray]:
            p = booster.inplace_predict(x)
            return {"label": (p > 0.5).astype(np.int64), "probabilities": np.stack([1 - p, p], axis=1)}

        return xgb
    if kind == "tensorflow":
        import tensorflow as tf

        # the runtime, loaded first in this process, has already set TensorFlow's threads
        function = tf.saved_model.load(str(artifact)).signatures[spec.runtime.signature or "serving_default"]
        return lambda x: {name: t.numpy() for name, t in function(**{spec.inputs[0].name: tf.constant(x)}).items()}
    import lightgbm

    lgb_booster = lightgbm.Booster(model_file=str(artifact))

    def lgb(x: np.ndarray) -> dict[str, np.ndarray]:
        p = lgb_booster.predict(x, num_threads=threads)
        return {"label": np.argmax(p, axis=1), "probabilities": p}

    return lgb


def per_call_us(call: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e6


def in_process(
    kind: str, runtime: ModelRuntime, direct: Direct, input_name: str, rows: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    """Median µs per call over interleaved rounds, runtime and direct, at 1 and 32 rows."""
    figures: dict[str, Any] = {}
    for batch in (1, 32):
        x = np.ascontiguousarray(rows[:batch])
        got, want = runtime.predict({input_name: x}), direct(x)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-5, err_msg=f"{kind} {name}")
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(per_call_us(lambda x=x: runtime.predict({input_name: x}), args.calls))
            theirs.append(per_call_us(lambda x=x: direct(x), args.calls))
        figures[f"rows_{batch}"] = {"runtime_us": statistics.median(ours), "direct_us": statistics.median(theirs)}
    return figures


def body_for(input_name: str, row: np.ndarray) -> bytes:
    """One row as a v2 JSON request, the same for our predictor and MLServer."""
    tensor = {"name": input_name, "datatype": "FP32", "shape": [1, row.shape[1]], "data": row.reshape(-1).tolist()}
    return json.dumps({"inputs": [tensor]}).encode()


def measure(args: argparse.Namespace, label: str) -> Callable[[int, str, Path], dict[str, Any]]:
    """Warm-up then measured load on a ready server: the same for every server compared."""

    def run(port: int, path: str, body_file: Path) -> dict[str, Any]:
        tool = loadgen.pick_tool("auto")
        loadgen.run_load(tool, port, path, body_file, loadgen.LoadSpec(args.connections, args.warmup))
        result = loadgen.run_load(tool, port, path, body_file, loadgen.LoadSpec(args.connections, args.duration))
        if result.non_2xx or result.socket_errors:
            raise RuntimeError(
                f"{label}: {result.non_2xx} non-2xx answers, {result.socket_errors} socket errors under load"
            )
        return {"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "tool": result.tool}

    return run


def served(
    kind: str,
    model_dir: Path,
    name: str,
    input_name: str,
    rows: np.ndarray,
    direct: Direct,
    work: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    http_port, grpc_port = free_ports(2)
    argv = [
        sys.executable,
        "-m",
        "predictor",
        "--model_dir",
        str(model_dir),
        "--http_port",
        str(http_port),
        "--grpc_port",
        str(grpc_port),
    ]
    server = Server(f"predictor ({kind})", argv, http_port, f"/v2/models/{name}/ready", work / f"{kind}.log", cwd=REPO)
    row = rows[:1]
    body = body_for(input_name, row)
    body_file = work / f"{kind}-body.json"
    body_file.write_bytes(body)
    path = f"/v2/models/{name}/infer"
    with running(server):
        status, answer = post_json(http_port, path, body)
        outputs = (
            {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in answer["outputs"]} if status == 200 else {}
        )
        for out_name, expected in direct(row).items():
            np.testing.assert_allclose(
                outputs[out_name], expected, rtol=0, atol=1e-5, err_msg=f"{kind} served {out_name}"
            )
        figures = measure(args, kind)(http_port, path, body_file)
    return figures | {"startup_s": server.startup_s}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench --formats", description=__doc__.splitlines()[0])
    p.add_argument(
        "--kinds", default="sklearn,onnx,xgboost,lightgbm,tensorflow", help="formats to measure (default: %(default)s)"
    )
    p.add_argument("--calls", type=int, default=2000, help="calls per in-process round (default: %(default)s)")
    p.add_argument(
        "--rounds", type=int, default=5, help="interleaved in-process rounds; the median is kept (default: %(default)s)"
    )
    p.add_argument(
        "--duration", type=float, default=10.0, help="seconds of measured load per served model (default: %(default)s)"
    )
    p.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of load before each measurement (default: %(default)s)"
    )
    p.add_argument("--connections", type=int, default=8, help="keep-alive connections (default: %(default)s)")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="the manifests' runtime.threads; 0: each framework's default (default: %(default)s)",
    )
    p.add_argument("--skip-served", action="store_true", help="only the in-process comparison")
    p.add_argument(
        "--no-mlserver",
        action="store_true",
        help=f"do not serve {' and '.join(formats_peers.PEER_KINDS)} with MLServer's runtimes as well",
    )
    p.add_argument("--no-mlserver-install", action="store_true", help="use MLServer only if its venv already exists")
    p.add_argument("--results-dir", type=Path, default=REPO / "results", help="where the JSON goes (default: results/)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if min(args.calls, args.rounds, args.connections) < 1 or min(args.duration, args.warmup) <= 0:
        print("error: --calls, --rounds, --connections, --duration and --warmup must be positive", file=sys.stderr)
        return 2
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(DATA))
    if unknown:
        print(f"error: --kinds: unknown {unknown}; known: {sorted(DATA)}", file=sys.stderr)
        return 2
    args.results_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as tmp:
        work = Path(tmp)
        for kind in kinds:
            print(f"[formats] {kind}: building the example model", file=sys.stderr)
            model_dir = build(kind, work / kind, args.threads)
            spec = load_spec(model_dir)
            runtime = load_runtime(spec, model_dir, "cpu")
            direct = direct_call(kind, model_dir)
            rows = np.ascontiguousarray(DATA[kind]().data[:32], dtype=np.float32)
            results[kind] = {"in_process": in_process(kind, runtime, direct, spec.inputs[0].name, rows, args)}
            if not args.skip_served:
                print(f"[formats] {kind}: serving under load", file=sys.stderr)
                results[kind]["served"] = served(
                    kind, model_dir, spec.name, spec.inputs[0].name, rows, direct, work, args
                )
                if kind in formats_peers.PEER_KINDS and not args.no_mlserver:
                    results[kind]["mlserver"] = formats_peers.serve_peer(
                        kind,
                        model_dir / spec.artifact.path,
                        spec.name,
                        work / f"{kind}-body.json",
                        direct(rows[:1])["probabilities"],
                        work,
                        measure(args, f"{kind} MLServer"),
                        not args.no_mlserver_install,
                        args.results_dir / "mlserver-install.log",
                        args.threads,
                    )
    print(table(results))
    peers = formats_peers.peer_table(results)
    if peers:
        print("\n" + peers)
    out = args.results_dir / f"bench-formats-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps({"settings": vars(args) | {"results_dir": str(args.results_dir)}, "results": results}, indent=2)
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0


def table(results: dict[str, Any]) -> str:
    head = f"{'format':<10}{'rows':>5}{'runtime µs':>12}{'direct µs':>11}{'added µs':>10}"
    lines = [head + f"{'served req/s':>14}{'p50 ms':>8}{'p99 ms':>8}"]
    for kind, figures in results.items():
        for batch in (1, 32):
            f = figures["in_process"][f"rows_{batch}"]
            s = figures.get("served") if batch == 1 else None
            served_cols = f"{s['rps']:>14.0f}{s['p50_ms']:>8.2f}{s['p99_ms']:>8.2f}" if s else ""
            lines.append(
                f"{kind:<10}{batch:>5}{f['runtime_us']:>12.1f}{f['direct_us']:>11.1f}"
                f"{f['runtime_us'] - f['direct_us']:>10.1f}{served_cols}"
            )
    return "\n".join(lines)
