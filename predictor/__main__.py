"""``python -m predictor``: serve one model directory (the server lives in predictor/server/main.py)."""

import sys

from predictor.server.main import main

if __name__ == "__main__":
    sys.exit(main())
