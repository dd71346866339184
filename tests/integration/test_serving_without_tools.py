"""`pip install servekit` without extras serves: the real server, started with the canary and
backup tools' own modules (kopf, rich, helm_python, boto3, ...) impossible to find, loads the iris
model and answers an inference, as in the predictor image, which installs no tool extra."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.dependency_sets import command_without, missing_from_predictor_image
from tests.support.server import Server

# `python -m predictor`, run from the interpreter whose finders hide the tools' modules.
RUN_PREDICTOR = "import runpy\nrunpy.run_module('predictor', run_name='__main__', alter_sys=True)\n"


@dataclass
class ServerWithoutTools(Server):
    hidden: set[str] = field(default_factory=set)

    def command(self) -> list[str]:
        python_m_predictor = super().command()
        assert python_m_predictor[1:3] == ["-m", "predictor"], python_m_predictor
        return command_without(self.hidden, RUN_PREDICTOR, *python_m_predictor[3:])


@pytest.fixture(scope="module")
def server_without_tools(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[ServerWithoutTools]:
    hidden = missing_from_predictor_image()
    assert {"kopf", "rich", "boto3"} <= hidden
    server = ServerWithoutTools(iris_dir, "iris", hidden=hidden)
    server.start(tmp_path_factory.mktemp("without-tools") / "server.log")
    yield server
    server.stop()


def test_the_server_answers_without_the_tools_modules(server_without_tools: ServerWithoutTools) -> None:
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
    reply = httpx.post(f"{server_without_tools.url}/v2/models/iris/infer", json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    outputs = {output["name"]: output["data"] for output in reply.json()["outputs"]}
    assert outputs["label"] == [0], reply.json()
    assert "No module named" not in server_without_tools.log()
