"""``servekit-model pack ARTIFACT --name NAME --out DIR``: a servable model directory from a model file.

It detects the format, reads the inputs and outputs from the model itself, copies the artifact,
writes ``model.yaml`` with its sha256, then loads the directory with the predictor's own runtime
and runs sample rows through it. The directory is built beside ``--out`` and moved into place
only once all of that passed: a refused model leaves nothing behind.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from predictor.modelcli.detect import HEAD_BYTES, Detected, detect, detect_directory
from predictor.modelcli.errors import CommandError
from predictor.modelcli.samples import sample_inputs
from predictor.modelcli.signature import Signature, read_signature
from predictor.modeldir.artifacts import ArtifactError, sha256_of
from predictor.modeldir.preprocessing import apply_transforms
from predictor.modeldir.spec import ModelSpec, SpecError, dump_spec, parse_spec
from predictor.runtimes import RuntimeLoadError, load_runtime

SAMPLE_ROWS = 4


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pack",
        help="write a model directory (artifact + model.yaml) from a trained model file",
        description=(
            "Detect the model's format (.onnx, XGBoost .json/.ubj, LightGBM .txt, scikit-learn .joblib/.pkl, a "
            "TensorFlow SavedModel directory), read its inputs and outputs from the model, copy it into "
            "DIR with a model.yaml that names its sha256, then load DIR as the server would and run sample rows "
            "through it. scikit-learn files are unpickled to read them: pack only files you trust."
        ),
    )
    parser.add_argument("artifact", type=Path, metavar="ARTIFACT", help="the trained model file")
    parser.add_argument(
        "--name", required=True, help="model name: the NAME in /v2/models/NAME (lowercase, digits, -_.)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="model directory to create (must not exist, or be empty)"
    )
    parser.add_argument("--version", default="1", help="model version in the manifest (default: %(default)s)")
    parser.add_argument(
        "--signature", default=None, help="TensorFlow SavedModel: the signature to serve (default: serving_default)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    spec, signature = pack(args.artifact, args.name, args.out, args.version, args.signature)
    _report(args.out, spec, signature)
    return 0


def pack(
    artifact: Path, name: str, out: Path, version: str = "1", signature_name: str | None = None
) -> tuple[ModelSpec, Signature]:
    """Make ``out`` a model directory for ``artifact``; a CommandError says why it cannot."""
    detected = detect_file(artifact)
    _check_out(out)
    if signature_name is not None and detected.framework != "tensorflow":
        raise CommandError(f"--signature is for TensorFlow SavedModels; {artifact} is a {detected.framework} model")
    signature = read_signature(detected, artifact, signature_name)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.packing-", dir=out.parent))
    try:
        try:
            spec = _write(staging, artifact, detected, signature, name, version)
        except ArtifactError as exc:
            raise CommandError(str(exc)) from None
        spec = _try_out(staging, spec)
        if out.exists():
            out.rmdir()  # _check_out allowed only an empty directory
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return spec, signature


def detect_file(artifact: Path) -> Detected:
    if artifact.is_dir():
        return detect_directory(str(artifact), {entry.name for entry in artifact.iterdir()})
    try:
        with artifact.open("rb") as stream:
            head = stream.read(HEAD_BYTES)
    except FileNotFoundError:
        raise CommandError(f"no such file: {artifact}") from None
    except OSError as exc:
        raise CommandError(f"cannot read {artifact}: {exc.strerror}") from None
    return detect(artifact.name, head)


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CommandError(f"--out {out} already exists and is not an empty directory; choose another or remove it")


def _write(
    staging: Path, artifact: Path, detected: Detected, signature: Signature, name: str, version: str
) -> ModelSpec:
    target = staging / f"model{detected.suffix}"
    if artifact.is_dir():
        shutil.copytree(artifact, target, symlinks=True)  # a link is refused by the hash, not followed
    else:
        shutil.copyfile(artifact, target)
    manifest: dict[str, Any] = {
        "name": name,
        "version": version,
        "framework": detected.framework,
        "artifact": {"path": target.name, "sha256": sha256_of(target), "format": detected.format},
        "inputs": signature.inputs,
        "outputs": signature.outputs,
    }
    if signature.labels is not None:
        manifest["labels"] = signature.labels
    if signature.feature_order is not None:
        manifest["preprocessing"] = {"feature_order": signature.feature_order}
    if signature.runtime:
        manifest["runtime"] = signature.runtime
    try:
        spec = parse_spec(manifest, "the drafted model.yaml")
    except SpecError as exc:
        raise CommandError(str(exc)) from None
    dump_spec(spec, staging)
    return spec


def _try_out(model_dir: Path, spec: ModelSpec) -> ModelSpec:
    """Load the directory with the server's runtime and run sample rows; fill in output dimensions
    the model left free, so the server's own start-up check (one row, declared shapes) passes."""
    try:
        runtime = load_runtime(spec, model_dir, "cpu")
        sample = sample_inputs(spec, SAMPLE_ROWS)
        outputs = runtime.predict(apply_transforms(spec, sample))
    except (RuntimeLoadError, ArtifactError) as exc:
        raise CommandError(f"the packed model does not load: {exc}") from None
    except Exception as exc:  # the model's own failure on the sample
        raise CommandError(
            f"the packed model failed on {SAMPLE_ROWS} sample rows: {type(exc).__name__}: {exc}"
        ) from None
    filled = [_fill(o.model_dump(mode="json", exclude_defaults=True), outputs.get(o.name)) for o in spec.outputs]
    spec = parse_spec({**spec.model_dump(mode="json", exclude_defaults=True), "outputs": filled}, "model.yaml")
    dump_spec(spec, model_dir)
    return spec


def _fill(output: dict[str, Any], array: np.ndarray | None) -> dict[str, Any]:
    name, declared = output["name"], output["shape"]
    if array is None:
        raise CommandError(f"output {name!r} is declared but the model returned no such output")
    got = list(array.shape)
    if got[:1] != [SAMPLE_ROWS]:
        raise CommandError(f"output {name!r} has shape {got} for {SAMPLE_ROWS} rows: its first axis is not the batch")
    if len(declared) != len(got):
        # A regressor's width is known only now: [-1] for one target, [-1, k] for k.
        if name == "prediction" and len(got) in (1, 2):
            return {**output, "shape": [-1, *got[1:]]}
        raise CommandError(f"output {name!r} has shape {got} for {SAMPLE_ROWS} rows, the model declares {declared}")
    return {**output, "shape": [-1, *(g if d == -1 else d for d, g in zip(declared[1:], got[1:], strict=True))]}


def _report(out: Path, spec: ModelSpec, signature: Signature) -> None:
    def tensors(items: Any) -> str:
        return ", ".join(f"{t.name} {t.datatype} {t.shape}" for t in items)

    print(f"packed {signature.summary}")
    print(f"  inputs:  {tensors(spec.inputs)}")
    print(f"  outputs: {tensors(spec.outputs)}")
    for note in signature.notes:
        print(f"  note: {note}")
    print(f"wrote {out / 'model.yaml'} (sha256 {spec.artifact.sha256[:12]}...); {SAMPLE_ROWS} sample rows ran")
    print(f"serve it: python -m predictor --model_dir {out}")
