"""Model directories for test estimators, and running a test server for a module or session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest

from predictor.modeldir.artifacts import sha256_of
from predictor.modeldir.spec import ModelSpec, dump_spec
from tests.integration.slow_estimator import SlowEstimator
from tests.support.server import Server


def started_dir(model_dir: Path) -> Path:
    """Where a test model built for ``model_dir`` signals that a call began (tests/support/started.py)."""
    return model_dir.with_name(model_dir.name + "-started")


def make_slow_model(path: Path, seconds: float) -> Path:
    """A one-input model whose predict sleeps, for event-loop and queue tests; each slow call
    signals in ``started_dir(path)`` as it begins."""
    started_dir(path).mkdir(parents=True, exist_ok=True)
    return make_estimator_model(path, "slow", SlowEstimator(seconds, str(started_dir(path))))


def make_estimator_model(path: Path, name: str, estimator: object) -> Path:
    """A model directory for ``estimator``: input x (FP32, 2 per row), output y (INT64) from predict."""
    path.mkdir(parents=True, exist_ok=True)
    artifact = path / "model.joblib"
    joblib.dump(estimator, artifact)
    spec = ModelSpec.model_validate(
        {
            "name": name,
            "framework": "sklearn",
            "artifact": {"path": artifact.name, "sha256": sha256_of(artifact)},
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
            "outputs": [{"name": "y", "datatype": "INT64", "shape": [-1], "source": "raw"}],
        }
    )
    dump_spec(spec, path)
    return path


def run_server(tmp_path_factory: pytest.TempPathFactory, server: Server) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("logs") / f"{server.model_name}.log"
    server.start(log)
    try:
        yield server
    finally:
        server.stop()
