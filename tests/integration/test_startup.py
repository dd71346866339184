"""A model that cannot be served stops start-up with one clear line, not a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import REPO, free_port


def start(model_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "predictor", "--model_dir", str(model_dir)]
    command += ["--http_port", str(free_port()), "--grpc_port", str(free_port()), *extra]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)


def assert_one_clear_line(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("predictor: error:")]
    assert len(errors) == 1, result.stderr
    assert fragment in errors[0]
    assert "Traceback" not in result.stderr


@pytest.fixture()
def copy_of_iris(iris_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "iris"
    shutil.copytree(iris_dir, target)
    return target


def test_missing_artifact(copy_of_iris: Path) -> None:
    (copy_of_iris / "model.joblib").unlink()
    assert_one_clear_line(start(copy_of_iris), "artifact 'model.joblib' not found")


def test_hash_mismatch(copy_of_iris: Path) -> None:
    artifact = copy_of_iris / "model.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    assert_one_clear_line(start(copy_of_iris), "refusing to load it")


def test_corrupt_artifact_with_matching_hash(copy_of_iris: Path) -> None:
    import hashlib

    import yaml

    artifact = copy_of_iris / "model.joblib"
    artifact.write_bytes(b"this is not a pickle")
    manifest = yaml.safe_load((copy_of_iris / "model.yaml").read_text())
    manifest["artifact"]["sha256"] = hashlib.sha256(artifact.read_bytes()).hexdigest()
    (copy_of_iris / "model.yaml").write_text(yaml.safe_dump(manifest))
    assert_one_clear_line(start(copy_of_iris), "cannot load joblib artifact")


def test_missing_manifest(tmp_path: Path) -> None:
    assert_one_clear_line(start(tmp_path), "no model.yaml in model directory")


def test_manifest_typo(copy_of_iris: Path) -> None:
    text = (copy_of_iris / "model.yaml").read_text().replace("framework:", "framwork:")
    (copy_of_iris / "model.yaml").write_text(text)
    assert_one_clear_line(start(copy_of_iris), "framwork: Extra inputs are not permitted")


def test_bad_flag_values(iris_dir: Path) -> None:
    assert_one_clear_line(start(iris_dir, "--max_batch_size", "0"), "max_batch_size")
    assert_one_clear_line(start(iris_dir, "--device", "tpu"), "device must be auto, cpu, cuda or cuda:N")
    assert_one_clear_line(start(iris_dir, "--device", "cuda"), "scikit-learn models run on the CPU only")


def test_port_in_use(iris_dir: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        command = [sys.executable, "-m", "predictor", "--model_dir", str(iris_dir)]
        command += ["--http_port", str(port), "--grpc_port", str(free_port())]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert_one_clear_line(result, f"--http_port {port}: cannot listen there")
