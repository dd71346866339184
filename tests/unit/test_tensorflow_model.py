"""TensorFlow SavedModels: packed, loaded and checked in child processes (TensorFlow and torch's
CUDA build crash one process that loads both; see tests/support/formats.py), answers equal to
TensorFlow's own, the signature chosen by name, a changed or linked file refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from predictor.modeldir.artifacts import sha256_of
from predictor.modeldir.spec import MANIFEST_NAME, load_spec
from tests.support import formats

pytestmark = pytest.mark.skipif(not formats.HAS_TENSORFLOW, reason=formats.NO_TENSORFLOW)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[formats.Trained, Path]:
    root = tmp_path_factory.mktemp("tensorflow")
    model = formats.tensorflow_iris(root)
    return model, model.pack(root / "dir", name="iris-tf")


def _files(tmp_path: Path, model: formats.Trained, outputs: dict[str, np.ndarray]) -> list[str]:
    rows = model.rows
    (tmp_path / "in.json").write_text(json.dumps({"features": rows.tolist()}))
    (tmp_path / "want.json").write_text(json.dumps({name: a.tolist() for name, a in outputs.items()}))
    return ["--inputs", str(tmp_path / "in.json"), "--expect", str(tmp_path / "want.json")]


def _edit(model_dir: Path, **changes: Any) -> None:
    path = model_dir / MANIFEST_NAME
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **changes}))


def test_pack_reads_the_signature(saved: tuple[formats.Trained, Path]) -> None:
    model, model_dir = saved
    spec = load_spec(model_dir)
    assert (spec.framework, spec.artifact.path, spec.artifact.format) == ("tensorflow", "model", "saved_model")
    assert spec.artifact.sha256 == sha256_of(model.artifact)  # the directory's listing, copied as it was
    assert [(t.name, t.datatype, t.shape) for t in spec.inputs] == [("features", "FP32", [-1, 4])]
    assert [(o.name, o.datatype, o.shape) for o in spec.outputs] == [
        ("label", "INT64", [-1]),
        ("probabilities", "FP32", [-1, 3]),
    ]


def test_answers_equal_tensorflows_own(saved: tuple[formats.Trained, Path], tmp_path: Path) -> None:
    model, model_dir = saved
    result = formats.run_isolated(["check", str(model_dir), *_files(tmp_path, model, model.reference(model.rows))])
    assert "model 'iris-tf' (tensorflow) loaded on cpu; 300 rows ran" in result.stdout
    assert result.stdout.rstrip().endswith("2 of 2 outputs match within 1e-05")


def test_the_signature_is_chosen_by_name(saved: tuple[formats.Trained, Path], tmp_path: Path) -> None:
    model, _ = saved
    out = tmp_path / "logits"
    formats.run_isolated(["pack", str(model.artifact), "--name", "m", "--out", str(out), "--signature", "logits"])
    spec = load_spec(out)
    assert spec.runtime.signature == "logits"
    assert [(o.name, o.shape) for o in spec.outputs] == [("logits", [-1, 3])]
    refused = formats.run_isolated(
        ["pack", str(model.artifact), "--name", "m", "--out", str(tmp_path / "x"), "--signature", "predict"], expect=2
    )
    assert refused.stderr.splitlines()[-1] == (
        "servekit-model: error: iris_savedmodel: the SavedModel has no signature 'predict'; "
        "it has ['logits', 'serving_default']"
    )


def test_a_changed_file_is_refused(saved: tuple[formats.Trained, Path], tmp_path: Path) -> None:
    model_dir = Path(shutil.copytree(saved[1], tmp_path / "m"))
    variables = next((model_dir / "model" / "variables").glob("variables.data-*"))
    variables.write_bytes(variables.read_bytes()[:-1] + b" ")
    refused = formats.run_isolated(["check", str(model_dir)], expect=2)
    assert "but the manifest expects" in refused.stderr and "refusing to load it" in refused.stderr


def test_a_link_inside_is_refused(saved: tuple[formats.Trained, Path], tmp_path: Path) -> None:
    model_dir = Path(shutil.copytree(saved[1], tmp_path / "m"))
    (model_dir / "model" / "assets" / "elsewhere").symlink_to("/etc/hostname")
    refused = formats.run_isolated(["check", str(model_dir)], expect=2)
    assert "holds 'assets/elsewhere', which is not a plain file" in refused.stderr


def test_a_missing_signature_in_the_manifest_is_refused(saved: tuple[formats.Trained, Path], tmp_path: Path) -> None:
    model_dir = Path(shutil.copytree(saved[1], tmp_path / "m"))
    _edit(model_dir, runtime={"signature": "predict"})
    refused = formats.run_isolated(["check", str(model_dir)], expect=2)
    assert refused.stderr.splitlines()[-1].endswith(
        "the SavedModel has no signature 'predict'; it has ['logits', 'serving_default']"
    )


def test_the_example(tmp_path: Path) -> None:
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "predictor.examples", "tensorflow", "--out", str(tmp_path / "ex")],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    spec = load_spec(tmp_path / "ex")
    assert (spec.name, spec.framework) == ("iris-tf", "tensorflow")
    result = formats.run_isolated(["check", str(tmp_path / "ex")])
    assert "probabilities: FP32 [4, 3]" in result.stdout
