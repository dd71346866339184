"""The command line of `servekit-canary release` (and of hack/model-release.sh): its flags, the
forms their values must have, and the checked settings (Release) with the CanaryAnalysis they make.
Errors read as the hack/ scripts' do: the flag, the value, the form expected; exit status 2."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

from predictor.canary.commands.output import EXIT_ERROR

DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"

# flag: (pattern the whole value must match, what it must be). Checked in this order, each only
# when given, so the first bad flag is the one named.
VALUE_FORMS: dict[str, tuple[str, str]] = {
    "namespace": (DNS_LABEL, "a namespace name (lower-case letters, digits, '-')"),
    "isvc": (DNS_LABEL, "an InferenceService name (lower-case letters, digits, '-')"),
    "name": (DNS_LABEL, "a predictor name (lower-case letters, digits, '-')"),
    "weight": (r"100|[1-9][0-9]?", "a percent from 1 to 100"),
    "mode": (r"cli|controller", "cli or controller"),
    "steps": (r"[0-9]+(,[0-9]+)*", "a comma-separated list of percents, e.g. 10,25,50"),
    "interval": (r"([0-9]+(ms|s|m|h))+", "a duration such as 30s, 1m or 1m30s"),
    "threshold": (r"[1-9][0-9]*", "a whole number of checks >= 1"),
    "min_success_rate": (r"100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?", "a percent from 0 to 100"),
    "max_p99_ms": (r"[1-9][0-9]*(\.[0-9]+)?|0?\.[0-9]*[1-9][0-9]*", "a number of milliseconds > 0"),
    "timeout": (r"[1-9][0-9]*", "a whole number of seconds"),
    "prometheus_url": (r"https?://[^\s\"]+", "an http:// or https:// URL"),
    "prometheus_service": (r"[a-z0-9-]+/[a-z0-9.-]+:[0-9]+", "NAMESPACE/SERVICE:PORT"),
}
# The analysis flags passed on to `servekit-canary run` as given, and their CanaryAnalysis fields.
ANALYSIS_FLAGS = {
    "steps": "steps",
    "interval": "interval",
    "threshold": "threshold",
    "min_success_rate": "minSuccessRate",
    "max_p99_ms": "maxP99Ms",
}


# --- command line ---------------------------------------------------------------------------------


class _ScriptHelp(argparse.RawDescriptionHelpFormatter):
    """`Usage:` as the hack/ scripts write it (their tests look for it at the start of a line)."""

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, prefix="Usage: " if prefix is None else prefix)


class ReleaseParser(argparse.ArgumentParser):
    """Errors as the hack/ scripts report them: the problem, the usage line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"^unrecognized arguments: ", "unknown option: ", message)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        print(self.format_usage().rstrip("\n"), file=sys.stderr)
        print(f"Run '{self.prog} --help' for the options.", file=sys.stderr)
        sys.exit(EXIT_ERROR)


RELEASE_HELP = "start a canary and see it through to its verdict: promoted (0) or rolled back (1)"
USAGE = "%(prog)s --isvc NAME --name CANARY (--storage-uri URI | --image REF) [options]"
DESCRIPTION = """\
Roll out a new model version of an InferenceService as a canary and see it through to its
verdict. `servekit-canary start` puts the new version beside the stable one, then
  --mode cli         `servekit-canary run` analyses the Prometheus metrics from here, step by
                     step, and promotes the canary or rolls it back;
  --mode controller  a CanaryAnalysis (servekit.dev/v1alpha1) is applied first, the
                     servekit-canary controller in the cluster does the same analysis, and this
                     waits for its status.phase: Succeeded or Failed.
.github/workflows/model-release.yml runs it (through hack/model-release.sh)."""
EPILOG = """\
Analysis flags left out take servekit-canary's defaults. Exit status: 0 promoted, 1 rolled back,
2 bad usage, a tool or API error, or no verdict within --timeout. Needs servekit-canary and, for
--mode controller or --prometheus-service, kubectl, on PATH; both use the current kubeconfig
context. MODEL_RELEASE_POLL_SECONDS sets the seconds between reads of the CanaryAnalysis
(default 10)."""


def build_release_parser(prog: str = "servekit-canary release") -> ReleaseParser:
    """The command line of `servekit-canary release` (and of hack/model-release.sh, with its name)."""
    parser = ReleaseParser(prog=prog, usage=USAGE, description=DESCRIPTION, epilog=EPILOG, formatter_class=_ScriptHelp)
    add_release_arguments(parser)
    return parser


def add_release_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--namespace", default="default", help="namespace of the InferenceService (default: default)"
    )
    parser.add_argument("--isvc", default="", metavar="NAME", help="the InferenceService")
    parser.add_argument(
        "--name", default="", metavar="CANARY", help="the canary's predictor name, e.g. v2 (a DNS label)"
    )
    parser.add_argument("--storage-uri", default="", metavar="URI", help="where the new model version is")
    parser.add_argument("--image", default="", metavar="REF", help="the new predictor image")
    parser.add_argument(
        "--weight", default="", metavar="N", help="the canary's first traffic percent (default: start's)"
    )
    parser.add_argument(
        "--mode", default="cli", metavar="M", help="cli or controller: where the analysis runs (default: cli)"
    )
    parser.add_argument(
        "--prometheus-url",
        default="",
        metavar="URL",
        help="the Prometheus the analysis queries (cli mode: this or the next)",
    )
    parser.add_argument(
        "--prometheus-service", default="", metavar="NS/SERVICE:PORT",
        help="cli mode: reach an in-cluster Prometheus through kubectl port-forward",
    )  # fmt: skip
    parser.add_argument("--steps", default="", metavar="LIST", help="traffic steps in percent, e.g. 10,25,50")
    parser.add_argument("--interval", default="", metavar="DURATION", help="time between checks, e.g. 1m")
    parser.add_argument("--threshold", default="", metavar="N", help="failed checks before a rollback")
    parser.add_argument("--min-success-rate", default="", metavar="PCT", help="least percent of non-5xx responses")
    parser.add_argument("--max-p99-ms", default="", metavar="MS", help="highest p99 latency in milliseconds")
    parser.add_argument(
        "--timeout", default="3600", metavar="SECONDS",
        help="controller mode: longest wait for the verdict (default: 3600)",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true", help="print the commands (and the CanaryAnalysis); run and change nothing"
    )


@dataclass(frozen=True)
class Release:
    """One release's settings, checked (release_from_args)."""

    prog: str
    namespace: str
    isvc: str
    name: str
    storage_uri: str
    image: str
    weight: str
    mode: str
    prometheus_url: str
    prometheus_service: str
    steps: str
    interval: str
    threshold: str
    min_success_rate: str
    max_p99_ms: str
    timeout: int
    dry_run: bool

    def analysis_flags(self) -> list[str]:
        """The analysis flags that were given, as `servekit-canary run` takes them."""
        flags: list[str] = []
        for field in ANALYSIS_FLAGS:
            value = getattr(self, field)
            if value:
                flags += ["--" + field.replace("_", "-"), value]
        return flags

    def canary_analysis(self) -> dict[str, Any]:
        """The CanaryAnalysis for --mode controller: the InferenceService and the flags given."""
        spec: dict[str, Any] = {"inferenceService": self.isvc}
        for field, key in ANALYSIS_FLAGS.items():
            value = getattr(self, field)
            if value:
                spec[key] = _yaml_value(field, value)
        if self.prometheus_url:
            spec["prometheusUrl"] = self.prometheus_url
        return {
            "apiVersion": "servekit.dev/v1alpha1",
            "kind": "CanaryAnalysis",
            "metadata": {"name": self.isvc, "namespace": self.namespace},
            "spec": spec,
        }


def _yaml_value(field: str, value: str) -> Any:
    if field == "steps":
        return [int(step) for step in value.split(",")]
    if field == "interval":
        return value
    return int(value) if value.isdigit() else float(value)


def release_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Release:
    """The settings, or a usage error (exit 2) naming the flag, the value and the form expected."""
    if not args.isvc:
        parser.error("--isvc is required")
    if not args.name:
        parser.error("--name is required")
    if not (args.storage_uri or args.image):
        parser.error("give the new version: --storage-uri, --image or both")
    for field, (pattern, expected) in VALUE_FORMS.items():
        value = getattr(args, field)
        if value and not re.fullmatch(pattern, value):
            parser.error(f"--{field.replace('_', '-')} '{value}' is not {expected}")
    if args.mode == "cli":
        if not (args.prometheus_url or args.prometheus_service):
            parser.error("--mode cli needs --prometheus-url or --prometheus-service (the analysis runs here)")
        if args.prometheus_url and args.prometheus_service:
            parser.error("give --prometheus-url or --prometheus-service, not both")
    elif args.prometheus_service:
        parser.error(
            "--prometheus-service is for --mode cli; the controller reaches Prometheus from inside the cluster"
        )
    settings = {name: getattr(args, name) for name in Release.__dataclass_fields__ if name not in ("prog", "timeout")}
    return Release(prog=parser.prog, timeout=int(args.timeout), **settings)
