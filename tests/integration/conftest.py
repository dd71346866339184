"""Shared fixtures: example models built once, real servers on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from predictor.examples import sklearn_iris, torch_digits
from tests.secret_volume import SecretVolume
from tests.support.auth import BODY_LIMIT, TOKEN
from tests.support.models import run_server
from tests.support.server import Server


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
