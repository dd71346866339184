"""``servekit-model check DIR [--inputs FILE --expect FILE]``: load a model directory as the
server would and compare its answers with expected ones.

Without ``--inputs`` it runs sample rows and prints the outputs' shapes: the directory loads and
answers. With ``--expect`` it exits 1 when an output differs by more than ``--atol``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from predictor.modelcli.errors import CommandError
from predictor.modelcli.payloads import differences, parse_json, read_expected, read_inputs
from predictor.modelcli.samples import sample_inputs
from predictor.modeldir.artifacts import ArtifactError
from predictor.modeldir.preprocessing import apply_transforms
from predictor.modeldir.spec import SpecError, load_spec
from predictor.runtimes import RuntimeLoadError, load_runtime


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="load a model directory and compare its answers with expected ones",
        description=(
            "Load DIR as the server would (manifest, sha256, runtime) and run inputs through it: sample rows, or "
            "--inputs FILE (a v2 request body, or an object of arrays by input name). With --expect FILE (a v2 "
            "response body, or an object of arrays by output name) every output named there is compared; "
            "exit 1 when one differs by more than --atol."
        ),
    )
    parser.add_argument("model_dir", type=Path, metavar="DIR", help="model directory with model.yaml")
    parser.add_argument("--inputs", type=Path, metavar="FILE", help="inputs as JSON (default: 4 seeded sample rows)")
    parser.add_argument("--expect", type=Path, metavar="FILE", help="expected outputs as JSON (needs --inputs)")
    parser.add_argument(
        "--atol", type=float, default=1e-5, help="largest absolute difference allowed (default: %(default)g)"
    )
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: the manifest's)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.expect is not None and args.inputs is None:
        raise CommandError("--expect needs --inputs: the expected answers are for given inputs")
    try:
        spec = load_spec(args.model_dir)
        runtime = load_runtime(spec, args.model_dir, args.device)
    except (SpecError, ArtifactError, RuntimeLoadError) as exc:
        raise CommandError(str(exc)) from None
    inputs = (
        read_inputs(spec, parse_json(_read(args.inputs), str(args.inputs)), str(args.inputs))
        if args.inputs
        else sample_inputs(spec, 4)
    )
    try:
        outputs = runtime.predict(apply_transforms(spec, inputs))
    except Exception as exc:
        raise CommandError(f"model {spec.name!r} failed on the inputs: {type(exc).__name__}: {exc}") from None
    rows = next(iter(inputs.values())).shape[0]
    print(f"model {spec.name!r} ({spec.framework}) loaded on {runtime.device}; {rows} rows ran")
    for out in spec.outputs:
        array = outputs[out.name]
        print(f"  {out.name}: {out.datatype} {list(array.shape)} first row {np.asarray(array[0]).tolist()!r}")
    if args.expect is None:
        return 0
    expected = read_expected(spec, parse_json(_read(args.expect), str(args.expect)), str(args.expect))
    problems = differences(expected, outputs, args.atol)
    for line in problems:
        print(f"  differs: {line}")
    print(f"{len(expected) - len(problems)} of {len(expected)} outputs match within {args.atol:g}")
    return 1 if problems else 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
