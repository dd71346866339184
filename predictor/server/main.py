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
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    from predictor.server.settings import PredictorSettings

logger = logging.getLogger("predictor")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """KServe's flags show their defaults; ours default to None (settings decide) and say so in words."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from predictor.server import kserve_compat

    parser = argparse.ArgumentParser(
        prog="python -m predictor",
        parents=[kserve_compat.kserve_parser()],
        description="Serve a scikit-learn or PyTorch model directory over KServe v1, v2 REST and v2 gRPC.",
        formatter_class=_HelpFormatter,
    )
    # KServe defaults the model name to "model"; ours comes from the manifest unless given. Its
    # --workers (uvicorn processes forked with the parent's model) becomes ours: see predictor/workers/.
    parser.set_defaults(model_name=None, workers=None)
    kserve_compat.rename_kserve_flag_help(
        parser,
        "workers",
        "server processes in this pod, each loading its own model copy, sharing the REST and gRPC ports "
        "(default 1; also PREDICTOR_WORKERS)",
    )
    add_setting_flags(parser.add_argument_group("servekit predictor (each flag also reads PREDICTOR_<FLAG>)"))
    return parser


# KServe's parser already has these (the model's name on the endpoint path, and --workers, which ours
# redefines): their flags come from KServe's parser, their values still land in the settings.
KSERVE_OWNED = ("model_name", "workers")


def _default_in_words(value: object) -> str | None:
    if value is None:
        return None  # the description says what happens when it is unset
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def add_setting_flags(group: argparse._ArgumentGroup) -> None:
    """One flag per PredictorSettings field, with its type, choices and help taken from the field:
    a setting cannot lack its flag or disagree with it. Flags default to None, so the settings
    layer (flag > PREDICTOR_* > default) decides."""
    from predictor.server.settings import PredictorSettings

    for name, field in PredictorSettings.model_fields.items():
        if name in KSERVE_OWNED:
            continue
        words = _default_in_words(field.default)
        text = (field.description or "").rstrip(".") + (f" (default {words})" if words is not None else "")
        annotation = field.annotation
        if annotation is bool:
            group.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None, help=text)
        elif typing.get_origin(annotation) is typing.Literal:
            group.add_argument(f"--{name}", choices=list(typing.get_args(annotation)), help=text)
        elif annotation is int:
            group.add_argument(f"--{name}", type=int, help=text)
        elif annotation is float:
            group.add_argument(f"--{name}", type=float, help=text)
        else:  # str, Path and their optional forms: pydantic converts the text
            group.add_argument(f"--{name}", help=text)


def setting_names() -> tuple[str, ...]:
    from predictor.server.settings import PredictorSettings

    return tuple(PredictorSettings.model_fields)


def settings_from_args(args: argparse.Namespace) -> Any:
    from predictor.server.settings import PredictorSettings

    given = {key: getattr(args, key) for key in setting_names() if getattr(args, key) is not None}
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
    from predictor.server.logs import failure_line

    print(failure_line(message), file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        from predictor.modeldir.spec import describe_errors

        return fail(f"bad settings: {describe_errors(exc)}")

    from predictor.workers import supervisor, worker

    if worker.is_worker():  # one of the processes a supervisor below started
        return worker.run_worker(args, settings, serve)
    ports = {"--http_port": args.http_port}
    if args.enable_grpc:
        ports["--grpc_port"] = args.grpc_port
    if problem := busy_port(ports):
        return fail(problem)
    if settings.workers > 1:
        from predictor.modeldir.spec import SpecError

        configure_logging(args, settings)
        try:
            return supervisor.supervise(sys.argv[1:] if argv is None else argv, settings)
        except SpecError as exc:
            return fail(str(exc))
    return serve(args, settings)


def configure_logging(args: argparse.Namespace, settings: PredictorSettings) -> None:
    """Every logger in the chosen format (logs.py), unless --configure_logging false."""
    if args.configure_logging:
        from predictor.server import logs

        logs.configure(settings, args.log_config_file)


def serve(args: argparse.Namespace, settings: PredictorSettings, server_class: Callable[..., Any] | None = None) -> int:
    """Load the model and serve it until SIGTERM: the whole server, or one worker of several
    (``server_class`` is then the worker's ModelServer, see predictor/workers/)."""
    import kserve

    from predictor.asgi import http_app
    from predictor.asgi.auth import TokenFileError, load_tokens
    from predictor.modeldir.artifacts import ArtifactError
    from predictor.modeldir.spec import SpecError
    from predictor.protocol import errors
    from predictor.protocol.errors import StartupError
    from predictor.runtimes import RuntimeLoadError
    from predictor.server import grpc_server, kserve_compat
    from predictor.server.model import ServingModel

    configure_logging(args, settings)  # before loading, so start-up progress is logged in the chosen format
    try:
        tokens = load_tokens(settings.auth_token_file)
    except TokenFileError as exc:
        return fail(str(exc))
    from predictor.monitoring import tracing

    if tracing.setup():
        logger.info("tracing: spans exported over OTLP, as the OTEL_* variables say")
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
    errors.add_handlers(kserve_compat.kserve_app())
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
