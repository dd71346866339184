"""ONNX, XGBoost and LightGBM models, trained here and packed with ``servekit-model pack``, served
by real server processes: over v2 REST and gRPC, with batching on and off, every answer equals
the framework's own prediction within 1e-5; a tampered artifact never serves."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest
from prometheus_client.parser import text_string_to_metric_families

from predictor.modeldir.spec import load_spec
from tests.support import formats
from tests.support.models import run_server
from tests.support.server import REPO, Server, free_port

TOLERANCE = 1e-5
KINDS = list(formats.CLASSIFIERS)


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[formats.Trained, Path]]:
    root = tmp_path_factory.mktemp("formats")
    models = {}
    for kind, build in formats.CLASSIFIERS.items():
        (root / kind).mkdir()
        model = build(root / kind)
        models[kind] = (model, model.pack(root / kind / "dir"))
    return models


@pytest.fixture(scope="module", params=[(k, b) for k in KINDS for b in ("batching", "no-batching")], ids=str)
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    packed: dict[str, tuple[formats.Trained, Path]],
) -> Iterator[tuple[formats.Trained, Server]]:
    kind, batching = request.param
    model, model_dir = packed[kind]
    # --max_latency_ms gives concurrent requests a moment to meet in one batch.
    args = ["--batching", "--max_latency_ms", "5"] if batching == "batching" else ["--no-batching"]
    for server in run_server(tmp_path_factory, Server(model_dir, kind, args=args)):
        yield model, server


def _assert_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray], where: str) -> None:
    for name, expected in want.items():
        assert got[name].shape == np.shape(expected), f"{where}: {name}"
        np.testing.assert_allclose(got[name], expected, rtol=0, atol=TOLERANCE, err_msg=f"{where}: {name}")


def _rest(server: Server, model: formats.Trained, rows: np.ndarray, client: httpx.Client) -> dict[str, np.ndarray]:
    body = {
        "inputs": [
            {"name": model.input_name, "datatype": "FP32", "shape": list(rows.shape), "data": rows.reshape(-1).tolist()}
        ]
    }
    response = client.post(f"{server.url}/v2/models/{model.kind}/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in response.json()["outputs"]}


def test_rest_answers_equal_the_framework(served: tuple[formats.Trained, Server]) -> None:
    model, server = served
    with httpx.Client() as client:
        got = _rest(server, model, model.rows, client)
    _assert_equal(got, model.reference(model.rows), f"{model.kind} REST, {len(model.rows)} rows")


def test_concurrent_requests_each_get_their_own_rows(served: tuple[formats.Trained, Server]) -> None:
    """30 requests of 10 rows at once: merged into batches (or not), each answer is its own rows'."""
    model, server = served
    chunks = np.split(model.rows, 30)
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda rows: _rest(server, model, rows, client), chunks))
    for i, (rows, got) in enumerate(zip(chunks, answers, strict=True)):
        _assert_equal(got, model.reference(rows), f"{model.kind} request {i}")
    single, calls = _batch_requests(server, model.kind)
    if "--no-batching" in server.args:
        assert single == calls, "without batching every model call holds one request"
    else:
        assert single < calls, "with batching, some of 30 concurrent requests should share a model call"


def _batch_requests(server: Server, model: str) -> tuple[float, float]:
    """(model calls that held one request, all model calls), from the server's own histogram."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    samples = {
        (s.name, s.labels.get("le")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if family.name == "servekit_batch_requests" and s.labels.get("model") == model
    }
    return samples[("servekit_batch_requests_bucket", "1.0")], samples[("servekit_batch_requests_count", None)]


def test_grpc_answers_equal_the_framework(served: tuple[formats.Trained, Server]) -> None:
    model, server = served

    async def call() -> dict[str, np.ndarray]:
        client = InferenceGRPCClient(server.grpc_target, retries=0, timeout=30)
        try:
            tensor = InferInput(model.input_name, list(model.rows.shape), "FP32")
            tensor.set_data_from_numpy(model.rows)
            response = await client.infer(InferRequest(model_name=model.kind, infer_inputs=[tensor]))
            return {o.name: o.as_numpy() for o in response.outputs}
        finally:
            await client.close()

    _assert_equal(asyncio.run(call()), model.reference(model.rows), f"{model.kind} gRPC")


def test_metadata_is_the_packed_signature(served: tuple[formats.Trained, Server]) -> None:
    model, server = served
    metadata = httpx.get(f"{server.url}/v2/models/{model.kind}", timeout=10).json()
    assert [i["name"] for i in metadata["inputs"]] == [model.input_name]
    assert [o["name"] for o in metadata["outputs"]] == ["label", "probabilities"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_tampered_artifact_stops_start_up(
    packed: dict[str, tuple[formats.Trained, Path]], tmp_path: Path, kind: str
) -> None:
    model_dir = Path(shutil.copytree(packed[kind][1], tmp_path / kind))
    artifact = model_dir / load_spec(model_dir).artifact.path
    # A SavedModel is a directory: one file in it changes.
    changed = next((artifact / "variables").glob("variables.data-*")) if artifact.is_dir() else artifact
    changed.write_bytes(changed.read_bytes() + b"\n")  # one byte more: still loadable, not the same model
    command = [sys.executable, "-m", "predictor", "--model_dir", str(model_dir)]
    command += ["--http_port", str(free_port()), "--grpc_port", str(free_port())]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("predictor: error:")]
    assert len(errors) == 1, result.stderr
    assert f"artifact '{artifact}' has sha256 " in errors[0] and "refusing to load it" in errors[0]


def test_v1_predict_answers_the_label(served: tuple[formats.Trained, Server]) -> None:
    model, server = served
    rows = model.rows[:20]
    response = httpx.post(f"{server.url}/v1/models/{model.kind}:predict", json={"instances": rows.tolist()}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == model.reference(rows)["label"].tolist()


def test_a_row_of_the_wrong_width_is_a_400_naming_the_width(served: tuple[formats.Trained, Server]) -> None:
    model, server = served
    width = model.rows.shape[1]
    body = {
        "inputs": [{"name": model.input_name, "datatype": "FP32", "shape": [1, width + 1], "data": [0.5] * (width + 1)}]
    }
    response = httpx.post(f"{server.url}/v2/models/{model.kind}/infer", json=body, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"] == (
        f"input {model.input_name!r}: dimension 1 is {width + 1}, expected {width} (declared shape [-1, {width}])"
    )
