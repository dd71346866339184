"""The server: settings, the KServe model, its wiring into KServe's ModelServer, logs and metrics."""
