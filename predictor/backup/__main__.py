"""``python -m predictor.backup``: see ``predictor.backup.cli``."""

import sys

from predictor.backup.cli import main

sys.exit(main())
