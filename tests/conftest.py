"""Root test configuration."""

import sys

# kserve.model_server parses sys.argv when it is imported; pytest's own flags (`--co` abbreviates
# kserve's `--configure_logging`) must not reach it.
_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import kserve.model_server  # noqa: F401
finally:
    sys.argv = _argv
