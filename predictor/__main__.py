"""``python -m predictor``: serve one model directory with KServe's ModelServer.

Flags extend KServe's own ``model_server.parser`` (ports, workers, gRPC, logging), and each of
ours can also come from a ``PREDICTOR_*`` environment variable (see settings.py).
"""

from __future__ import annotations

import argparse
import gc
import logging
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    from predictor.settings import PredictorSettings

logger = logging.getLogger("predictor")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """KServe's flags show their defaults; ours default to None (settings decide) and say so in words."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from kserve import model_server

    parser = argparse.ArgumentParser(
        prog="python -m predictor",
        parents=[model_server.parser],
        description="Serve a scikit-learn or PyTorch model directory over KServe v1, v2 REST and v2 gRPC.",
        formatter_class=_HelpFormatter,
    )
    # KServe defaults the model name to "model"; ours comes from the manifest unless given. Its
    # --workers (uvicorn processes forked with the parent's model) becomes ours: see workers.py.
    parser.set_defaults(model_name=None, workers=None)
    for action in parser._actions:
        if action.dest == "workers":
            action.help = (
                "server processes in this pod, each loading its own model copy, sharing the REST and gRPC ports "
                "(default 1; also PREDICTOR_WORKERS)"
            )
    ours = parser.add_argument_group("servekit predictor (each flag also reads PREDICTOR_<FLAG>)")
    ours.add_argument("--model_dir", help="directory with model.yaml and the artifact (default /mnt/models)")
    ours.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the manifest's runtime.device)")
    ours.add_argument(
        "--batching", action=argparse.BooleanOptionalAction, default=None, help="dynamic batching (default on)"
    )
    ours.add_argument("--max_batch_size", type=int, help="most rows in one merged batch (default 32)")
    ours.add_argument("--max_latency_ms", type=float, help="longest wait for batch-mates (default 0: never wait)")
    ours.add_argument("--max_queue_size", type=int, help="queued requests before 503 (default 1024)")
    ours.add_argument(
        "--fast_path", action=argparse.BooleanOptionalAction, default=None, help="lean v2 REST route (default on)"
    )
    ours.add_argument(
        "--access_log", action=argparse.BooleanOptionalAction, default=None, help="log every request (default off)"
    )
    ours.add_argument("--log_format", choices=["json", "text"], help="log lines as JSON objects or text (default text)")
    ours.add_argument(
        "--log_level", choices=["debug", "info", "warning", "error"], help="per-request lines at debug (default info)"
    )
    ours.add_argument("--auth_token_file", help="bearer tokens for inference and metadata, one a line (default: none)")
    ours.add_argument("--max_body_bytes", type=int, help="largest REST body and gRPC message (default 64 MiB)")
    return parser


SETTING_FLAGS = (
    "model_dir", "model_name", "device", "batching", "max_batch_size", "max_latency_ms", "max_queue_size", "fast_path",
    "access_log", "log_format", "log_level", "auth_token_file", "max_body_bytes", "workers",
)  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> Any:
    from predictor.settings import PredictorSettings

    given = {key: getattr(args, key) for key in SETTING_FLAGS if getattr(args, key) is not None}
    return PredictorSettings(**given)


def busy_port(ports: dict[str, int]) -> str | None:
    """The first flag whose port cannot be bound; uvicorn would find out only after the model loaded,
    and answer with a traceback."""
    for flag, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
            except OSError as exc:
                return f"{flag} {port}: cannot listen there ({exc.strerror})"
    return None


def fail(message: str) -> int:
    from predictor.logs import failure_line

    print(failure_line(message), file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        from predictor.spec import describe_errors

        return fail(f"bad settings: {describe_errors(exc)}")

    from predictor import workers

    if workers.is_worker():  # one of the processes a supervisor below started
        return workers.run_worker(args, settings, serve)
    ports = {"--http_port": args.http_port}
    if args.enable_grpc:
        ports["--grpc_port"] = args.grpc_port
    if problem := busy_port(ports):
        return fail(problem)
    if settings.workers > 1:
        from predictor.spec import SpecError

        configure_logging(args, settings)
        try:
            return workers.supervise(sys.argv[1:] if argv is None else argv, settings)
        except SpecError as exc:
            return fail(str(exc))
    return serve(args, settings)


def configure_logging(args: argparse.Namespace, settings: PredictorSettings) -> None:
    """Every logger in the chosen format (logs.py), unless --configure_logging false."""
    if args.configure_logging:
        from predictor import logs

        logs.configure(settings, args.log_config_file)


def serve(args: argparse.Namespace, settings: PredictorSettings, server_class: Callable[..., Any] | None = None) -> int:
    """Load the model and serve it until SIGTERM: the whole server, or one worker of several
    (``server_class`` is then the worker's ModelServer, see workers.py)."""
    import kserve
    from kserve import model_server

    from predictor import errors, grpc_server, http_app
    from predictor.artifacts import ArtifactError
    from predictor.auth import TokenFileError, load_tokens
    from predictor.errors import StartupError
    from predictor.model import ServingModel
    from predictor.runtimes import RuntimeLoadError
    from predictor.spec import SpecError

    configure_logging(args, settings)  # before loading, so start-up progress is logged in the chosen format
    try:
        tokens = load_tokens(settings.auth_token_file)
    except TokenFileError as exc:
        return fail(str(exc))
    start = time.perf_counter()
    try:
        model = ServingModel(settings)
        model.load()
    except (SpecError, ArtifactError, RuntimeLoadError, StartupError) as exc:
        return fail(str(exc))
    logger.info("model %s loaded in %.2f s", model.name, time.perf_counter() - start)

    # Everything loaded so far (torch, kserve, the model) lives as long as the process. Freezing it
    # keeps full collections from walking millions of objects: they cost ~100 ms each (measured as
    # a 100 ms p99 under load with torch), freezing brings p99 back to a few ms.
    gc.collect()
    gc.freeze()
    errors.add_handlers(model_server.app)
    http_app.install(model, settings, tokens)
    grpc_server.install(settings, tokens)
    server = (server_class or kserve.ModelServer)(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=1,
        enable_grpc=args.enable_grpc,
        enable_latency_logging=args.enable_latency_logging,
    )
    server.start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
