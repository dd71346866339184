"""servekit's custom KServe predictor: serve a scikit-learn or PyTorch model directory."""

__version__ = "0.1.0"
