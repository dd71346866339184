"""The hardening settings from PREDICTOR_* variables alone, as a pod spec (or a spawned worker) sets them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.models import run_server
from tests.support.payloads import V2
from tests.support.server import Server


@pytest.fixture(scope="module")
def env_server(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[Server]:
    token = tmp_path_factory.mktemp("env-secret") / "token"
    token.write_text("env-token\n")
    env = {
        "PREDICTOR_AUTH_TOKEN_FILE": str(token),
        "PREDICTOR_MAX_BODY_BYTES": "2048",
        "PREDICTOR_LOG_FORMAT": "json",
        "PREDICTOR_LOG_LEVEL": "debug",
    }
    yield from run_server(tmp_path_factory, Server(iris_dir, "iris", env=env))


def test_settings_from_the_environment(env_server: Server) -> None:
    url = f"{env_server.url}/v2/models/iris/infer"
    assert httpx.post(url, json=V2).status_code == 401
    headers = {"Authorization": "Bearer env-token", "x-request-id": "env-1"}
    assert httpx.post(url, json=V2, headers=headers).status_code == 200
    assert httpx.post(url, content=b" " * 4096, headers=headers).status_code == 413
    entries = [json.loads(line) for line in env_server.log().splitlines()]
    assert any(e.get("request_id") == "env-1" and e["logger"] == "uvicorn.access" for e in entries)
