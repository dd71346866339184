"""Logging for the whole process: ours, KServe's and uvicorn's lines in one format.

``--log_format json`` writes one JSON object per line (time, level, logger, message, pid, and
request_id on lines about a request; exception when there is a traceback) for a cluster's log
pipeline; ``text`` writes KServe's familiar format. Either way:

* per-request lines (uvicorn's access log, KServe's timing lines, the gRPC call line) appear at
  ``--log_level debug`` only, or with ``--access_log``; a failing request logs at error;
* KServe's ``kserve.trace`` timing lines (two per REST request, even for health probes) never
  appear at info;
* Python warnings and uncaught exceptions go through the same handler.

KServe's ``ModelServer`` configures logging itself only when its ``kserve`` logger has no handler;
this configuration gives it one, so it stays as set here.
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
import threading
import warnings
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson

from predictor.asgi import request_id
from predictor.server.settings import PredictorSettings

_TEXT_FORMAT = "%(asctime)s.%(msecs)03d %(process)s %(name)s %(levelname)s %(message)s"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# Loggers that KServe and uvicorn configure for themselves; each gets our handler explicitly.
_OWN_HANDLER = ("kserve", "kserve.trace", "uvicorn", "uvicorn.access", "predictor")
_active_format: str | None = None  # set by configure()


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (orjson escapes newlines in messages and tracebacks)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        rid = request_id.current()
        if rid is not None:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = record.stack_info
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """KServe's layout, with ``[request_id]`` after the logger name on lines about a request."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT, _DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = request_id.current()
        if rid is None:
            return line
        return line.replace(f" {record.name} ", f" {record.name} [{rid}] ", 1)


def logging_config(log_format: str, level: str, access_log: bool) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` for these settings."""
    level = level.upper()
    debug = level == "DEBUG"
    loggers: dict[str, Any] = {
        name: {"handlers": ["servekit"], "level": level, "propagate": False} for name in _OWN_HANDLER
    }
    loggers["kserve.trace"]["level"] = "DEBUG" if debug else "WARNING"
    loggers["uvicorn.access"]["level"] = "INFO" if debug or access_log else "WARNING"
    loggers["uvicorn.error"] = {"level": level}  # propagates to "uvicorn"
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"servekit": {"()": formatter}},
        "handlers": {
            "servekit": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "servekit"}
        },
        "loggers": loggers,
        "root": {"handlers": ["servekit"], "level": level},
    }


def configure(settings: PredictorSettings, log_config_file: str | None = None) -> None:
    """Set up logging for the process; KServe's ``--log_config_file``, when given, wins."""
    if log_config_file:
        from predictor.server import kserve_compat

        # our modules log under predictor.*: the same handlers and level as KServe's logger
        kserve_compat.use_kserve_log_config(log_config_file, "predictor")
        return
    global _active_format
    logging.config.dictConfig(logging_config(settings.log_format, settings.log_level, settings.access_log))
    _active_format = settings.log_format
    logging.captureWarnings(True)
    # KServe 0.21 builds its app on FastAPI's deprecated ORJSONResponse. scikit-learn's
    # catch_warnings() resets Python's once-per-place memory on every predict, so this one warning,
    # which no user can act on, would come back on every KServe-routed request.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated", category=UserWarning)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("predictor").critical("uncaught exception", exc_info=(kind, value, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None:
        return
    logging.getLogger("predictor").critical(
        "uncaught exception in thread %s", args.thread.name if args.thread else "?", exc_info=args.exc_value
    )


def failure_line(message: str) -> str:
    """The one line a failed start-up prints: JSON under JSON logging, else ``predictor: error: ...``.

    Start-up can fail before the settings (and so --log_format) are known; then the environment
    variable the image sets decides.
    """
    chosen = _active_format or os.environ.get("PREDICTOR_LOG_FORMAT", "").strip().lower()
    if chosen != "json":
        return f"predictor: error: {message}"
    record = logging.LogRecord("predictor", logging.CRITICAL, __file__, 0, message, None, None)
    return JsonFormatter().format(record)
