"""MLServer in a virtualenv of its own outside the repository: target (c) (mlserver-sklearn) and
the formats benchmark's peers (mlserver-xgboost, mlserver-lightgbm).

The virtualenv lives under ``~/.cache/servekit-bench`` (or ``$SERVEKIT_BENCH_CACHE``), one per
set of pinned versions, and is made on first use with pip. scikit-learn, XGBoost and LightGBM in
it are pinned to the versions the project's venv has, so it loads the very files the predictor
serves. When the install fails, the benchmarks report MLServer as not available and go on.

MLServer publishes no ONNX runtime at 1.7.1 (pip finds no ``mlserver-onnx``), so ONNX has no peer.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

MLSERVER_VERSION = "1.7.1"
# The one source of truth for MLServer's runtimes: format -> (package, version, implementation,
# the framework whose version is pinned to the project venv's). Each runtime is released with
# MLServer under the same version number.
RUNTIMES: dict[str, tuple[str, str, str, str]] = {
    "sklearn": ("mlserver-sklearn", "1.7.1", "mlserver_sklearn.SKLearnModel", "scikit-learn"),
    "xgboost": ("mlserver-xgboost", "1.7.1", "mlserver_xgboost.XGBoostModel", "xgboost"),
    "lightgbm": ("mlserver-lightgbm", "1.7.1", "mlserver_lightgbm.LightGBMModel", "lightgbm"),
}
# The project may have a framework under another distribution name (``[xgboost]`` installs xgboost-cpu);
# MLServer's runtime depends on the plain name, pinned to the same version.
ALIASES = {"xgboost": ("xgboost", "xgboost-cpu")}
# MLServer 1.7.1's inference workers call asyncio.get_event_loop() before setting a loop, which
# uvloop 0.22 and later refuse; 0.21.0 was current when 1.7.1 came out.
UVLOOP_VERSION = "0.21.0"


def cache_root() -> Path:
    env = os.environ.get("SERVEKIT_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "servekit-bench"


def framework_pin(distribution: str) -> str:
    """``dist==version`` as the project venv has it, or the bare name when it lacks the extra."""
    for installed in ALIASES.get(distribution, (distribution,)):
        try:
            return f"{distribution}=={metadata.version(installed)}"
        except metadata.PackageNotFoundError:
            continue
    return distribution


def requirements() -> list[str]:
    pins = [f"mlserver=={MLSERVER_VERSION}"]
    for package, version, _, framework in RUNTIMES.values():
        pins += [f"{package}=={version}", framework_pin(framework)]
    return [*pins, f"uvloop=={UVLOOP_VERSION}"]


def venv_dir() -> Path:
    """One directory per set of requirements, so a changed pin never reuses a stale venv."""
    digest = hashlib.sha256(" ".join(requirements()).encode()).hexdigest()[:10]
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache_root() / f"mlserver-{MLSERVER_VERSION}-{digest}-{py}"


def versions() -> dict[str, str]:
    """The pinned MLServer distributions, for a results file."""
    return {"mlserver": MLSERVER_VERSION} | {package: version for package, version, _, _ in RUNTIMES.values()}


def mlserver_bin(venv: Path) -> Path:
    return venv / "bin" / "mlserver"


def ensure_venv(log_path: Path, install: bool = True) -> tuple[Path | None, str]:
    """The path of a working ``mlserver`` executable, or None and one line saying why not."""
    venv = venv_dir()
    exe = mlserver_bin(venv)
    marker = venv / ".servekit-complete"
    wanted = " ".join(requirements()) + "\n"
    if marker.is_file() and exe.is_file() and marker.read_text() == wanted:
        return exe, f"using {venv}"
    if not install:
        return None, f"MLServer not installed in {venv} and --no-mlserver-install was given"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # The base interpreter, not the project venv's, so nothing of the project leaks into MLServer's env.
    base_python = getattr(sys, "_base_executable", sys.executable)
    with log_path.open("ab") as log:
        try:
            subprocess.run(
                [base_python, "-m", "venv", "--clear", str(venv)],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=300,
            )
            subprocess.run(
                [
                    str(venv / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    *requirements(),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=900,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            return None, f"MLServer install failed ({type(exc).__name__}); see {log_path}"
    if not exe.is_file():
        return None, f"MLServer installed but {exe} is missing; see {log_path}"
    marker.write_text(wanted)
    return exe, f"installed {' '.join(requirements())} into {venv}"


def write_model_repository(
    root: Path,
    model_name: str,
    artifact: Path,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    kind: str = "sklearn",
) -> Path:
    """An MLServer model repository serving ``artifact`` with ``kind``'s runtime, every port chosen by us.

    Everything else is MLServer's default (one parallel inference worker, metrics on), as a user
    following its docs would run it.
    """
    if kind not in RUNTIMES:
        raise ValueError(f"MLServer runtime for {kind!r}: none known; known: {sorted(RUNTIMES)}")
    root.mkdir(parents=True, exist_ok=True)
    settings = {
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "debug": False,
    }
    (root / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    model_dir = root / model_name
    model_dir.mkdir(exist_ok=True)
    model_settings = {
        "name": model_name,
        "implementation": RUNTIMES[kind][2],
        "parameters": {"uri": str(artifact.resolve()), "version": "v1"},
    }
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings, indent=2) + "\n")
    return root
