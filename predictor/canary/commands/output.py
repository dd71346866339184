"""What every servekit-canary command shares: its name, exit codes, usage errors and output."""

from __future__ import annotations

import argparse
import json
from typing import IO, Any

PROG = "servekit-canary"
EXIT_OK, EXIT_ROLLED_BACK, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """A bad flag value, named with what was expected."""


def emit(args: argparse.Namespace, out: IO[str], data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.output == "json" else text, file=out)
