"""Shared fixtures: example models built once, real servers on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest

from predictor.artifacts import sha256_of
from predictor.examples import sklearn_iris, torch_digits
from predictor.spec import ModelSpec, dump_spec
from tests.integration.server import Server
from tests.integration.slow_estimator import SlowEstimator
from tests.secret_volume import SecretVolume

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GRPC_AUTH = (("authorization", f"Bearer {TOKEN}"),)
BODY_LIMIT = 16384


@pytest.fixture(scope="session")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "iris"
    sklearn_iris.build(path)
    return path


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "digits"
    torch_digits.build(path, epochs=3)
    return path


def make_slow_model(path: Path, seconds: float) -> Path:
    """A one-input model whose predict sleeps, for event-loop and queue tests."""
    return make_estimator_model(path, "slow", SlowEstimator(seconds))


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


@pytest.fixture(scope="session")
def iris_server(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[Server]:
    yield from run_server(tmp_path_factory, Server(iris_dir, "iris"))


@pytest.fixture(scope="session")
def kserve_route_server(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[Server]:
    """The iris model with the lean route off: v2 REST infer goes through KServe's FastAPI app."""
    yield from run_server(tmp_path_factory, Server(iris_dir, "iris", args=["--no-fast_path"]))


@pytest.fixture(scope="session")
def digits_server(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> Iterator[Server]:
    yield from run_server(tmp_path_factory, Server(digits_dir, "digits"))


@pytest.fixture(scope="session")
def token_volume(tmp_path_factory: pytest.TempPathFactory) -> SecretVolume:
    volume = SecretVolume(tmp_path_factory.mktemp("secret"))
    volume.write(TOKEN + "\n")
    return volume


@pytest.fixture(scope="session", params=["lean", "kserve"])
def guarded_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, iris_dir: Path, token_volume: SecretVolume
) -> Iterator[Server]:
    """Iris with a bearer token, a 16 KiB body limit and JSON logs; on the lean route and on KServe's."""
    args = ["--auth_token_file", str(token_volume.path), "--max_body_bytes", str(BODY_LIMIT), "--log_format", "json"]
    if request.param == "kserve":
        args.append("--no-fast_path")
    yield from run_server(tmp_path_factory, Server(iris_dir, "iris", args=args))
