"""``python -m predictor.backup``: see ``predictor.backup.cli``."""

import os
import sys

from predictor.backup.cli import main

try:
    sys.exit(main())
except BrokenPipeError:
    # The reader went away (`hack/restore.sh --help | head`): end quietly, as a shell tool does on
    # SIGPIPE, with stdout pointed at /dev/null so the interpreter's own flush at exit fails no more.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(128 + 13)
