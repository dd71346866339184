"""The analysis flags of `servekit-canary run` (Flagger's names) and the AnalysisSpec they make,
on top of an --analysis FILE."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from predictor.canary.commands.output import UsageError
from predictor.canary.spec import AnalysisSpec


def weight_percent(text: str) -> int:
    """A traffic percent from 0 to 100 (argparse type)."""
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


def add_analysis_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("analysis (Flagger's names; flags win over --analysis FILE)")
    group.add_argument("--analysis", type=Path, help="YAML file with the analysis (a CanaryAnalysis spec)")
    group.add_argument("--steps", type=_steps, help="canary weights in order (default 10,25,50)")
    group.add_argument("--step-weight", type=weight_percent, help="weight added per step, with --max-weight")
    group.add_argument("--max-weight", type=weight_percent, help="last weight before promotion, with --step-weight")
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
