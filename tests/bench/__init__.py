"""servekit's benchmark harness (issue 3): ``python -m tests.bench --help``."""
