"""``servekit-canary``: canary rollouts of a KServe InferenceService, by hand or by metric analysis.

Exit codes: 0 done (``run``: promoted), 1 ``run`` rolled back, 2 a usage or API error.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import ValidationError

from predictor.canary import display, history, isvc, rollout
from predictor.canary.history import HistoryError
from predictor.canary.isvc import Obj, SpecError
from predictor.canary.rollout import ApiError, Edges
from predictor.canary.spec import AnalysisSpec
from predictor.canary.state import ACTIVE, TERMINAL, Phase, RolloutState

PROG = "servekit-canary"
EXIT_OK, EXIT_ROLLED_BACK, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """A bad flag value, named with what was expected."""


# --- arguments ------------------------------------------------------------------------------------


def _weight(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"weight {text!r} is not an integer from 0 to 100") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"weight {value} is not from 0 to 100")
    return value


def _steps(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"steps {text!r}: expected comma-separated weights, e.g. 10,25,50") from None


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


def _analysis_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("analysis (Flagger's names; flags win over --analysis FILE)")
    group.add_argument("--analysis", type=Path, help="YAML file with the analysis (a CanaryAnalysis spec)")
    group.add_argument("--steps", type=_steps, help="canary weights in order (default 10,25,50)")
    group.add_argument("--step-weight", type=_weight, help="weight added per step, with --max-weight")
    group.add_argument("--max-weight", type=_weight, help="last weight before promotion, with --step-weight")
    group.add_argument("--interval", help="time between analyses, e.g. 30s, 1m (default 1m)")
    group.add_argument("--window", help="range of each query (default: the interval)")
    group.add_argument("--threshold", type=int, help="failed checks before a rollback (default 5)")
    group.add_argument("--min-success-rate", type=float, help="percent of non-5xx answers (default 99)")
    group.add_argument("--max-p99-ms", type=float, help="99th percentile latency in ms (default 500)")
    group.add_argument("--min-requests", type=int, help="fewest canary requests per check; fewer fails it (default 20)")
    group.add_argument("--compare-stable", action="store_true", help="also compare with the stable predictor")
    group.add_argument("--manual-gate", type=int, action="append", help="hold at this weight until `promote`")
    group.add_argument("--progress-deadline", help="longest wait for a ready canary (default 10m)")
    group.add_argument("--canary-selector", help="PromQL label matchers of the canary (a template, see docs)")
    group.add_argument("--stable-selector", help="PromQL label matchers of the stable predictor")
    group.add_argument(
        "--webhook", action="append", metavar="TYPE=URL", help="a webhook: pre-rollout, confirm-rollout, "
        "confirm-promotion, rollback or event (repeatable)",
    )  # fmt: skip


FLAG_FIELDS = (
    "steps", "step_weight", "max_weight", "interval", "window", "threshold", "min_success_rate", "max_p99_ms",
    "min_requests", "progress_deadline", "canary_selector", "stable_selector",
)  # fmt: skip


def analysis_spec(args: argparse.Namespace) -> AnalysisSpec:
    """The analysis from --analysis FILE with the flags on top."""
    data: dict[str, Any] = {}
    if args.analysis is not None:
        try:
            loaded = yaml.safe_load(args.analysis.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise UsageError(f"--analysis {args.analysis}: {exc}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"--analysis {args.analysis}: expected a mapping of analysis settings")
        # The file's keys are a CanaryAnalysis spec's (camelCase): under the field names, so that a
        # flag for the same field replaces it instead of standing beside it.
        fields = {str(info.alias or name): name for name, info in AnalysisSpec.model_fields.items()}
        kept = {str(k): v for k, v in loaded.items() if k not in ("inferenceService", "prometheusUrl")}
        data = {fields.get(k, k): v for k, v in kept.items()}
    for name in FLAG_FIELDS:
        value = getattr(args, name)
        if value is not None:
            data[name] = value
    if args.steps is not None:
        data.pop("step_weight", None)
        data.pop("max_weight", None)
    if args.step_weight is not None:
        data.pop("steps", None)
    if args.compare_stable:
        data["compare_stable"] = data.get("compare_stable") or {}
    if args.manual_gate:
        data["manual_gates"] = args.manual_gate
    for index, hook in enumerate(args.webhook or []):
        hook_type, _, url = hook.partition("=")
        data.setdefault("webhooks", []).append({"name": f"{hook_type}-{index}", "type": hook_type, "url": url})
    try:
        return AnalysisSpec.model_validate(data)
    except ValidationError as exc:
        raise UsageError("; ".join(_pydantic_message(error) for error in exc.errors())) from None


def _pydantic_message(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


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
    start.add_argument("--weight", type=_weight, default=0, help="percent of traffic to the canary (default 0)")
    weight = command("set-weight", change, "send N percent of the traffic to the canary")
    weight.add_argument("weight", metavar="N", type=_weight, help="percent, 0 to 100")
    command("promote", change, "make the canary the stable predictor")
    command("rollback", change, "drop the canary (Knative: 0%%, then the previous spec)", aliases=["abort"])
    command("history", read, "the changes recorded for the InferenceService, oldest first")
    restore = command("restore", change, "write back the specs of one history entry")
    restore.add_argument("revision", metavar="REVISION", type=int, help="revision number (see `history`)")
    run = command("run", read, "analyse the canary step by step until it is promoted or rolled back")
    run.add_argument("--prometheus-url", required=True, help="Prometheus with the predictor's series")
    run.add_argument("--poll", type=float, default=5.0, help="seconds between looks at the rollout (default 5)")
    _analysis_flags(run)
    from predictor.canary.controller import add_controller_command

    add_controller_command(commands)
    return parser


# --- commands -------------------------------------------------------------------------------------


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
    def value(self, promql: str) -> float | None:
        raise rollout.MetricsUnavailable("no --prometheus-url given")


def emit(args: argparse.Namespace, out: IO[str], data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.output == "json" else text, file=out)


def spec_diff(before: Obj, after: Obj, name: str) -> str:
    def lines(obj: Obj) -> list[str]:
        return yaml.safe_dump({"spec": obj.get("spec", {})}, sort_keys=False).splitlines(keepends=True)

    diff = difflib.unified_diff(lines(before), lines(after), f"{name} (now)", f"{name} (after)")
    return "".join(diff) or "no change\n"


def rollout_state(edges: Edges, namespace: str, name: str) -> RolloutState | None:
    """The state a `run` kept (in the history ConfigMap), if any."""
    kept = edges.history.read_rollout(namespace, name)
    return RolloutState.from_dict(kept) if kept else None


def describe(obj: Obj, stable_checksum: str | None, kept: RolloutState | None) -> dict[str, Any]:
    view = isvc.view(obj, stable_checksum)
    return {
        "namespace": view.namespace,
        "name": view.isvc,
        "mode": str(view.mode),
        "stable": view.stable,
        "canary": view.canary,
        "weight": view.weight,
        "ready": view.ready if view.present else None,
        "checksum": view.checksum,
        "restoring": view.restoring,
        "rollout": kept.to_dict() if kept else None,
    }


def status_text(info: dict[str, Any]) -> str:
    lines = [
        f"InferenceService {info['namespace']}/{info['name']} ({info['mode']} mode)",
        f"  stable: {info['stable'] or '-'}",
    ]
    if info["canary"]:
        ready = "ready" if info["ready"] else "not ready"
        lines.append(f"  canary: {info['canary']} at {info['weight']}% ({ready})")
    elif info["restoring"]:
        lines.append("  canary: none (a rolled-back spec waits at 0% for its revision)")
    else:
        lines.append("  canary: none")
    kept = info["rollout"]
    if kept:
        lines.append(f"  rollout: {kept['phase']}, {kept['failed_checks']} failed checks: {kept['message']}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace, edges: Edges, out: IO[str]) -> int:
    obj = edges.isvcs.get(args.namespace, args.isvc)
    checksum = rollout.stable_checksum(edges.history.read(args.namespace, args.isvc))
    info = describe(obj, checksum, rollout_state(edges, args.namespace, args.isvc))
    emit(args, out, info, status_text(info))
    return EXIT_OK


def apply_change(
    args: argparse.Namespace, edges: Edges, out: IO[str], action: str, change: Callable[[Obj], Obj]
) -> int:
    """--dry-run: the diff; otherwise write, record the history, and show the result."""
    current = edges.isvcs.get(args.namespace, args.isvc)
    try:
        after = change(current)
    except isvc.NoCanary as exc:
        emit(args, out, {"changed": False, "message": str(exc)}, f"nothing to do: {exc}")
        return EXIT_OK
    if args.dry_run:
        emit(args, out, {"dryRun": True, "spec": after.get("spec")}, spec_diff(current, after, args.isvc).rstrip("\n"))
        return EXIT_OK
    if action == "start":
        rollout.record_baseline(edges, args.namespace, args.isvc, current)
    written = rollout.change_isvc(edges, args.namespace, args.isvc, action, change, f"servekit-canary {action}")
    checksum = rollout.stable_checksum(edges.history.read(args.namespace, args.isvc))
    info = describe(written, checksum, rollout_state(edges, args.namespace, args.isvc))
    changed = written.get("spec") != current.get("spec")
    done = "done" if changed else "nothing to change"
    emit(args, out, {"changed": changed, "action": action, **info}, f"{action}: {done}\n{status_text(info)}")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, edges: Edges, out: IO[str]) -> int:
    entries = edges.history.read(args.namespace, args.isvc)
    checksum = rollout.stable_checksum(entries)
    current = isvc.view(edges.isvcs.get(args.namespace, args.isvc), checksum)
    if current.restoring and not args.dry_run:
        return _settle(args, edges, out, checksum)
    previous = history.last_stable_predictor(entries)
    return apply_change(args, edges, out, "rollback", lambda obj: isvc.rollback(obj, previous))


def _settle(args: argparse.Namespace, edges: Edges, out: IO[str], checksum: str | None) -> int:
    written = edges.isvcs.update(args.namespace, args.isvc, lambda obj: isvc.settle(obj, checksum))
    info = describe(written, checksum, rollout_state(edges, args.namespace, args.isvc))
    text = (
        "rollback finished: the restored spec serves all traffic"
        if not info["restoring"]
        else ("the restored revision is not ready yet; run rollback again later (the controller does it by itself)")
    )
    emit(args, out, {"changed": not info["restoring"], **info}, f"{text}\n{status_text(info)}")
    return EXIT_OK


def cmd_history(args: argparse.Namespace, edges: Edges, out: IO[str]) -> int:
    entries = edges.history.read(args.namespace, args.isvc)
    rows = [f"{e.revision:>4}  {e.time}  {e.action:<10}  {_entry_summary(e)}" for e in entries]
    text = "\n".join(["REV   TIME                  ACTION      SPECS", *rows]) if rows else "no history yet"
    emit(args, out, [entry.to_dict() for entry in entries], text)
    return EXIT_OK


def _entry_summary(entry: history.Entry) -> str:
    parts = [f"predictor {entry.predictor.get('name') or '(unnamed)'}"]
    if isvc.CANARY_PERCENT in entry.predictor:
        parts.append(f"canaryTrafficPercent {entry.predictor[isvc.CANARY_PERCENT]}")
    for item in entry.canary or []:
        parts.append(f"canary {item.get('predictor', {}).get('name')} at {item.get('trafficPercent')}%")
    return ", ".join(parts)


def cmd_restore(args: argparse.Namespace, edges: Edges, out: IO[str]) -> int:
    entry = history.find(edges.history.read(args.namespace, args.isvc), args.revision)
    return apply_change(args, edges, out, "restore", lambda obj: isvc.restore(obj, entry.predictor, entry.canary))


def cmd_run(args: argparse.Namespace, edges: Edges, out: IO[str]) -> int:
    spec = analysis_spec(args)
    obj = edges.isvcs.get(args.namespace, args.isvc)
    view = isvc.view(obj)
    current = rollout_state(edges, args.namespace, args.isvc) or RolloutState()
    if not view.present and current.phase not in ACTIVE:
        raise UsageError(f"InferenceService {args.namespace}/{args.isvc} has no canary: `{PROG} start` one first")
    shown = display.for_stream(out) if args.output == "text" else display.PlainDisplay(sys.stderr)
    try:
        while True:
            before, current = current, rollout.step(edges, spec, args.namespace, args.isvc, current)
            if current != before:
                edges.history.write_rollout(args.namespace, args.isvc, current.to_dict())
            shown.update(isvc.view(edges.isvcs.get(args.namespace, args.isvc)), current)
            if current.phase in TERMINAL and current.finished:
                break
            edges.sleep(args.poll)
    finally:
        shown.close()
    if args.output == "json":
        print(json.dumps(current.to_dict(), indent=2), file=out)
    return EXIT_OK if current.phase == Phase.SUCCEEDED else EXIT_ROLLED_BACK


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
    except (ApiError, SpecError, HistoryError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        kept = history.config_map_name(getattr(args, "isvc", "ISVC"))
        print(f"{PROG}: interrupted; its state is kept in ConfigMap {kept}: run again to go on", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
