"""``servekit-canary``: canary rollouts of a KServe InferenceService, by hand or by metric analysis.

The parser and the dispatch; each subcommand lives in predictor/canary/commands/.
Exit codes: 0 done (``run``: promoted), 1 ``run`` rolled back, 2 a usage or API error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from predictor.canary import history, isvc, rollout
from predictor.canary.commands import release
from predictor.canary.commands.analysis_flags import add_analysis_flags, analysis_spec, weight_percent
from predictor.canary.commands.change import apply_change, cmd_restore, cmd_rollback
from predictor.canary.commands.output import EXIT_ERROR, PROG, UsageError
from predictor.canary.commands.release_settings import RELEASE_HELP
from predictor.canary.commands.run import cmd_run
from predictor.canary.commands.show import cmd_history, cmd_status
from predictor.canary.history import HistoryError
from predictor.canary.isvc import ChangeRefused
from predictor.canary.rollout import ApiError, Edges
from predictor.kube_object import Obj

__all__ = ["analysis_spec", "build_parser", "dispatch", "main"]


def _common(dry_run: bool = False, output: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-n", "--namespace", help="namespace of the InferenceService (default: the context's)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    if output:
        parser.add_argument("-o", "--output", choices=["text", "json"], default="text", help="output format")
    if dry_run:
        parser.add_argument("--dry-run", action="store_true", help="print the change as a diff, write nothing")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Canary rollouts of a KServe InferenceService: by hand, or promoted and rolled back "
        "on the predictor's metrics in Prometheus. Exit codes: 0 done (run: promoted), 1 run rolled back, "
        "2 usage or API error.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    read = _common()
    change = _common(dry_run=True)

    def command(name: str, parent: argparse.ArgumentParser, text: str, **kwargs: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[parent], help=text, description=text, **kwargs)
        sub.add_argument("isvc", metavar="ISVC", help="name of the InferenceService")
        return sub

    command("status", read, "show the canary, its weight and readiness, and the rollout's state")
    start = command("start", change, "add a canary with another model and/or image")
    start.add_argument("--name", required=True, help="canary predictor name (Standard mode; Knative records it)")
    start.add_argument("--storage-uri", help="model location of the canary (STORAGE_URI)")
    start.add_argument("--image", help="container image of the canary")
    start.add_argument("--weight", type=weight_percent, default=0, help="percent of traffic to the canary (default 0)")
    weight = command("set-weight", change, "send N percent of the traffic to the canary")
    weight.add_argument("weight", metavar="N", type=weight_percent, help="percent, 0 to 100")
    command("promote", change, "make the canary the stable predictor")
    command("rollback", change, "drop the canary (Knative: 0%%, then the previous spec)", aliases=["abort"])
    command("history", read, "the changes recorded for the InferenceService, oldest first")
    restore = command("restore", change, "write back the specs of one history entry")
    restore.add_argument("revision", metavar="REVISION", type=int, help="revision number (see `history`)")
    run = command("run", read, "analyse the canary step by step until it is promoted or rolled back")
    run.add_argument("--prometheus-url", required=True, help="Prometheus with the predictor's series")
    run.add_argument("--poll", type=float, default=5.0, help="seconds between looks at the rollout (default 5)")
    add_analysis_flags(run)
    # Parsed by its own parser (main hands it over): its errors and help follow the hack/ scripts'.
    commands.add_parser("release", help=RELEASE_HELP, add_help=False)
    from predictor.canary.controller import add_controller_command

    add_controller_command(commands)
    return parser


def resolve_namespace(args: argparse.Namespace) -> str:
    if args.namespace:
        return str(args.namespace)
    try:
        from kubernetes import config as loaded

        config: Any = loaded  # untyped
        _, active = config.list_kube_config_contexts(config_file=args.kubeconfig)
        if args.context:
            contexts, _ = config.list_kube_config_contexts(config_file=args.kubeconfig)
            active = next(c for c in contexts if c["name"] == args.context)
        return str(active.get("context", {}).get("namespace") or "default")
    except Exception:  # no kubeconfig (in-cluster) or no namespace in it: Kubernetes' default
        return "default"


def kube_edges(args: argparse.Namespace, prometheus_url: str | None = None) -> Edges:
    from predictor.canary.kube import KubeEvents, KubeHistory, KubeInferenceServices, api_client
    from predictor.canary.prometheus import PrometheusSource
    from predictor.canary.webhooks import HttpWebhooks

    client = api_client(args.kubeconfig, args.context)
    metrics = PrometheusSource(prometheus_url) if prometheus_url else _NoMetrics()
    return Edges(KubeInferenceServices(client), KubeHistory(client), KubeEvents(client), metrics, HttpWebhooks())


class _NoMetrics:
    def values(self, queries: Mapping[str, str]) -> dict[str, float | None]:
        raise rollout.MetricsUnavailable("no --prometheus-url given")


def dispatch(args: argparse.Namespace, edges: Edges, out: IO[str]) -> int:
    """Run one command on the given edges (the tests hand in their own)."""
    simple: dict[str, Callable[[Obj], Obj]] = {
        "start": lambda obj: isvc.start(obj, args.name, args.storage_uri, args.image, args.weight),
        "set-weight": lambda obj: isvc.set_weight(obj, args.weight),
        "promote": isvc.promote,
    }
    handlers = {"status": cmd_status, "rollback": cmd_rollback, "abort": cmd_rollback}
    handlers |= {"history": cmd_history, "restore": cmd_restore, "run": cmd_run}
    if args.command in simple:
        return apply_change(args, edges, out, args.command, simple[args.command])
    return handlers[args.command](args, edges, out)


EdgesMaker = Callable[[argparse.Namespace, str | None], Edges]


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None, make_edges: EdgesMaker | None = None) -> int:
    """The command line; ``make_edges`` replaces the Kubernetes edges (tests hand in their own)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["release"]:
        return release.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    out = out or sys.stdout
    if args.command == "controller":
        from predictor.canary.controller import run_controller

        return run_controller(args)
    try:
        if args.command == "run":
            analysis_spec(args)  # a bad flag fails before anything is read
        args.namespace = resolve_namespace(args)
        edges = (make_edges or kube_edges)(args, getattr(args, "prometheus_url", None))
        return dispatch(args, edges, out)
    except UsageError as exc:
        parser.error(str(exc))
    except (ApiError, ChangeRefused, HistoryError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        kept = history.config_map_name(getattr(args, "isvc", "ISVC"))
        print(f"{PROG}: interrupted; its state is kept in ConfigMap {kept}: run again to go on", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
