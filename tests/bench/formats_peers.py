"""The formats benchmark's peers: the same model served by MLServer with its runtime for that format.

MLServer has runtimes for scikit-learn, XGBoost and LightGBM (mlserver-sklearn, -xgboost,
-lightgbm); at the pinned 1.7.1 it has none for ONNX or TensorFlow SavedModel, so those formats
have no peer. A peer that cannot be installed, started or checked is a row saying why, never a
dropped one. The table and the ratio are pure; ``serve_peer`` is the I/O.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tests.bench import mlserver_env
from tests.bench.servers import Server, free_ports, post_json, running

# Formats the formats benchmark compares with MLServer (sklearn is (c) in ``make bench``).
PEER_KINDS = ("xgboost", "lightgbm")


def mlserver_expected(kind: str, probabilities: np.ndarray) -> np.ndarray:
    """What MLServer's runtime answers by default for our classifier's probabilities.

    mlserver-xgboost calls ``Booster.predict``, which for binary:logistic is the positive class's
    probability; mlserver-lightgbm calls ``Booster.predict``: every class's probability.
    """
    if kind == "xgboost":
        return probabilities[:, 1]
    if kind == "lightgbm":
        return probabilities
    raise ValueError(f"MLServer peer for {kind!r}: none; expected one of {PEER_KINDS}")


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours/MLServer in req/s, or None when either side has no figure."""
    if not ours or not theirs:
        return None
    return ours / theirs


def peer_table(results: dict[str, Any]) -> str:
    """servekit and MLServer served side by side, one pair of rows per format that has a peer."""
    lines = [f"{'format':<10}{'server':<10}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'ours/MLServer':>15}"]
    for kind, figures in results.items():
        if "mlserver" not in figures:
            continue
        ours, peer = figures.get("served"), figures["mlserver"]
        if ours:
            lines.append(f"{kind:<10}{'servekit':<10}{ours['rps']:>8.0f}{ours['p50_ms']:>8.2f}{ours['p99_ms']:>8.2f}")
        if "rps" not in peer:
            lines.append(f"{kind:<10}{'MLServer':<10}  {peer['status']}: {peer['reason']}")
            continue
        r = ratio(ours["rps"] if ours else None, peer["rps"])
        ratio_col = f"{r:>15.2f}" if r is not None else f"{'-':>15}"
        lines.append(
            f"{kind:<10}{'MLServer':<10}{peer['rps']:>8.0f}{peer['p50_ms']:>8.2f}{peer['p99_ms']:>8.2f}{ratio_col}"
        )
    return "\n".join(lines) if len(lines) > 1 else ""


def peer_env(threads: int) -> dict[str, str] | None:
    """MLServer's environment beyond ours: the OpenMP threads XGBoost and LightGBM use by default."""
    return {"OMP_NUM_THREADS": str(threads)} if threads else None


def not_available(status: str, reason: str) -> dict[str, Any]:
    return {"status": status, "reason": reason}


def serve_peer(
    kind: str,
    artifact: Path,
    name: str,
    body_file: Path,
    probabilities: np.ndarray,
    work: Path,
    measure: Callable[[int, str, Path], dict[str, Any]],
    install: bool,
    install_log: Path,
    threads: int = 0,
) -> dict[str, Any]:
    """MLServer serving ``artifact`` with ``kind``'s runtime, checked, then ``measure``d on its port.

    Returns the figures, or ``{"status", "reason"}`` when MLServer cannot be installed, started
    or answers wrongly. ``threads`` (0: the framework's default) reaches MLServer's runtime as
    ``OMP_NUM_THREADS``, its only knob for it, so both servers' trees run on as many threads.
    """
    print(f"[formats] {kind}: MLServer peer (first run installs its venv with pip)", file=sys.stderr)
    exe, why = mlserver_env.ensure_venv(install_log, install)
    if exe is None:
        return not_available("not installed", why)
    http_port, grpc_port, metrics_port = free_ports(3)
    repo = mlserver_env.write_model_repository(
        work / f"mlserver-{kind}", name, artifact, http_port, grpc_port, metrics_port, kind
    )
    server = Server(
        f"mlserver ({kind})",
        [str(exe), "start", str(repo)],
        http_port,
        f"/v2/models/{name}/ready",
        work / f"mlserver-{kind}.log",
        env=peer_env(threads),
        cwd=work,
    )
    path = f"/v2/models/{name}/infer"
    try:
        with running(server):
            status, answer = post_json(http_port, path, body_file.read_bytes())
            if status != 200:
                return not_available("failed", f"first answer was HTTP {status}: {str(answer)[:200]}")
            got = np.asarray(answer["outputs"][0]["data"], dtype=np.float64)
            want = mlserver_expected(kind, probabilities).reshape(-1)
            if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=1e-5):
                return not_available("failed", f"answered {got.tolist()}, expected {want.tolist()}")
            figures = measure(http_port, path, body_file)
    except Exception as exc:  # a peer that fails is reported with why, and the benchmark goes on
        return not_available("failed", f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    return figures | {"startup_s": server.startup_s, "versions": mlserver_env.versions()}
