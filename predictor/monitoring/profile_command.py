"""``servekit-model profile DIR --data FILE``: store the inputs' reference distributions in a model directory.

Writes ``profile.json`` (reference.py) next to the artifact and names it, with its sha256, under
``profile:`` in ``model.yaml``; the server checks that hash before it reads the profile, as it does
the artifact's. The manifest is rewritten from its parsed data (comments are not kept).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from predictor.modeldir.artifacts import sha256_of
from predictor.modeldir.spec import MANIFEST_NAME, ModelSpec, SpecError, load_spec, spec_from_text
from predictor.monitoring.reference import DEFAULT_BINS, InputReference, Profile, ProfileError, profile_features
from predictor.monitoring.training_data import read_rows

PROFILE_NAME = "profile.json"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``profile`` to ``servekit-model``'s subparsers (predictor/modelcli/main.py)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "profile",
        help="store each input feature's reference distribution (for the drift gauges) in a model directory",
        description=(
            "Read training data, cut each feature of one input into quantile bins, and store the bins and "
            f"their shares in DIR/{PROFILE_NAME}, named with its sha256 in DIR/{MANIFEST_NAME}. The server "
            "then publishes servekit_input_drift{model,input,feature}: the population stability index of "
            "its recent inputs against this profile."
        ),
    )
    parser.add_argument("model_dir", metavar="DIR", type=Path, help="the model directory (with model.yaml)")
    parser.add_argument(
        "--data",
        required=True,
        type=Path,
        metavar="FILE",
        help="training data: .npy (rows x features), .csv (a header row optional) or .parquet (needs pyarrow); "
        "named columns are put in the manifest's feature_order",
    )
    parser.add_argument("--input", help="the input tensor the data is for (default: the model's only input)")
    parser.add_argument(
        "--bins", type=int, default=DEFAULT_BINS, help="quantile bins per feature (default %(default)s)"
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        written = write_profile(args.model_dir, args.data, args.input, args.bins)
    except (SpecError, ProfileError) as exc:
        print(f"servekit-model profile: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {written} and named it in {args.model_dir / MANIFEST_NAME}")
    return 0


def choose_input(spec: ModelSpec, name: str | None) -> str:
    names = [t.name for t in spec.inputs]
    if name is None:
        if len(names) != 1:
            raise ProfileError(f"the model has inputs {names}: name the one the data is for with --input")
        return names[0]
    if name not in names:
        raise ProfileError(f"--input {name!r}: the model's inputs are {names}")
    return name


def write_profile(model_dir: Path, data: Path, input_name: str | None, bins: int) -> Path:
    spec = load_spec(model_dir)
    name = choose_input(spec, input_name)
    tensor = spec.input_named(name)
    assert tensor is not None
    feature_order = spec.preprocessing.feature_order if len(spec.inputs) == 1 else None
    if tensor.datatype == "BYTES":
        raise ProfileError(f"input {name!r} is BYTES: only numeric inputs have a distribution to profile")
    # As the server will see them: 3.1 read as FP32 is 3.0999999, which must fall in the bin that
    # the training value 3.1 fell in, so the bins are cut on values of the input's own datatype.
    rows = read_rows(data, feature_order).astype(tensor.numpy_dtype).astype(np.float64)
    rest = tensor.shape[1:]
    if not all(d > 0 for d in rest):
        raise ProfileError(f"input {name!r} (shape {tensor.shape}) has no fixed number of features per row to profile")
    if rows.shape[1] != int(np.prod(rest)):
        raise ProfileError(
            f"training data {str(data)!r} has {rows.shape[1]} features per row, "
            f"input {name!r} (shape {tensor.shape}) has {int(np.prod(rest))}"
        )
    inputs = dict(_existing_inputs(spec, model_dir))
    inputs[name] = InputReference(profile_features(rows, bins))
    profile = Profile(inputs, rows=rows.shape[0], source=data.name)
    path = model_dir / PROFILE_NAME
    path.write_text(json.dumps(profile.to_json(), indent=1) + "\n", encoding="utf-8")
    _name_in_manifest(model_dir, {"path": PROFILE_NAME, "sha256": sha256_of(path)})
    return path


def _existing_inputs(spec: ModelSpec, model_dir: Path) -> dict[str, InputReference]:
    """Other inputs' references from the current profile, kept when one input is profiled again."""
    from predictor.monitoring.monitor import load_profile

    try:
        profile = load_profile(spec, model_dir)
    except Exception:  # a missing or stale profile is what this command replaces
        return {}
    return {} if profile is None else dict(profile.inputs)


def _name_in_manifest(model_dir: Path, entry: dict[str, str]) -> None:
    manifest = model_dir / MANIFEST_NAME
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    data["profile"] = entry
    text = yaml.safe_dump(data, sort_keys=False)
    spec_from_text(text, str(manifest))  # never write a manifest the server would refuse
    manifest.write_text(text, encoding="utf-8")
