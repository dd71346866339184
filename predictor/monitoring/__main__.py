"""``python -m predictor.monitoring profile ...``: a stand-in until ``servekit-model profile`` is wired."""

import sys

from predictor.monitoring.profile_command import main

sys.exit(main())
