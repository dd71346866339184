"""``servekit-model``: the entry point. A subcommand is a module with ``add_parser(subparsers)``
that registers its parser and sets ``run`` on it; listing the module below is all it takes."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from predictor.modelcli.errors import CommandError

SUBCOMMANDS = [
    "predictor.modelcli.pack",
    "predictor.modelcli.check",
    "predictor.monitoring.profile_command",
]

Run = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="servekit-model",
        description=(
            "Turn a trained model file into a model directory the predictor serves, check one, and profile "
            "its training data for the drift gauges."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        importlib.import_module(module).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Run = args.run
    try:
        return run(args)
    except CommandError as exc:
        print(f"servekit-model: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
