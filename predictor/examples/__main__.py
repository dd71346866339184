"""``python -m predictor.examples KIND --out DIR``: write an example model directory (KIND: sklearn, torch,
transformer, onnx, xgboost, lightgbm, tensorflow)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m predictor.examples",
        description="Build an example model from data scikit-learn ships and write a servable model directory.",
    )
    sub = parser.add_subparsers(dest="kind", required=True)
    sk = sub.add_parser("sklearn", help="LogisticRegression on iris (model name 'iris')")
    sk.add_argument("--out", type=Path, required=True, help="model directory to write")
    sk.add_argument("--name", default="iris", help="model name in the manifest (default: %(default)s)")
    th = sub.add_parser("torch", help="MLP on 8x8 digits, torch.export program (model name 'digits')")
    th.add_argument("--out", type=Path, required=True, help="model directory to write")
    th.add_argument("--name", default="digits", help="model name in the manifest (default: %(default)s)")
    th.add_argument("--hidden", type=int, default=128, help="hidden layer width (default: %(default)s)")
    th.add_argument("--depth", type=int, default=2, help="number of hidden layers (default: %(default)s)")
    th.add_argument("--epochs", type=int, default=20, help="training epochs; 0 keeps random weights")
    th.add_argument(
        "--format",
        choices=["torchscript", "torch_export"],
        default="torch_export",
        help="artifact format; TorchScript is deprecated in torch 2.13 (default: %(default)s)",
    )
    tf = sub.add_parser(
        "transformer", help="transformer text classifier, random weights, torch.export (model name 'textclf')"
    )
    tf.add_argument("--out", type=Path, required=True, help="model directory to write")
    tf.add_argument("--name", default="textclf", help="model name in the manifest (default: %(default)s)")
    tf.add_argument("--layers", type=int, default=4, help="encoder layers (default: %(default)s)")
    tf.add_argument("--width", type=int, default=256, help="model width, d_model (default: %(default)s)")
    tf.add_argument("--length", type=int, default=128, help="tokens per request (default: %(default)s)")
    from predictor.examples.formats import DEFAULT_NAMES

    helps = {
        "onnx": "LogisticRegression on iris as an ONNX graph (model name 'iris-onnx')",
        "xgboost": "XGBClassifier on breast cancer, UBJSON (model name 'cancer')",
        "lightgbm": "LGBMClassifier on wine, text model (model name 'wine')",
        "tensorflow": "softmax regression on iris, TensorFlow SavedModel (model name 'iris-tf')",
    }
    for kind, text in helps.items():
        fp = sub.add_parser(kind, help=text, description=f"{text}, packed with servekit-model pack.")
        fp.add_argument(
            "--out", type=Path, required=True, help="model directory to write (must not exist, or be empty)"
        )
        fp.add_argument("--name", default=DEFAULT_NAMES[kind], help="model name in the manifest (default: %(default)s)")
    args = parser.parse_args(argv)

    if args.kind in helps:
        return _build_format(args.kind, args.out, args.name)
    if args.kind == "sklearn":
        from predictor.examples import sklearn_iris

        spec = sklearn_iris.build(args.out, name=args.name)
    else:
        try:
            from predictor.examples import torch_digits, torch_transformer
        except ImportError:
            print(f"error: the {args.kind} example needs torch; install servekit[torch]", file=sys.stderr)
            return 2
        if args.kind == "torch":
            spec = torch_digits.build(
                args.out, name=args.name, hidden=args.hidden, depth=args.depth, epochs=args.epochs, fmt=args.format
            )
        else:
            try:
                spec = torch_transformer.build(
                    args.out, name=args.name, layers=args.layers, width=args.width, length=args.length
                )
            except ValueError as exc:
                parser.error(str(exc))
    print(f"wrote model {spec.name!r} ({spec.framework}) to {args.out}")
    return 0


def _build_format(kind: str, out: Path, name: str) -> int:
    from predictor.examples import formats
    from predictor.modelcli.errors import CommandError

    try:
        spec = formats.build(kind, out, name)
    except ImportError as exc:
        print(f"error: the {kind} example needs {exc.name}; install {formats.EXTRAS[kind]}", file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote model {spec.name!r} ({spec.framework}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
