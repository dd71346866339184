"""One analysis of a canary: the queries it needs, and the verdict on the values they returned.

Pure: the caller runs the queries (``plan``) against a metric source and hands the values back
(``evaluate``). No data, too few requests or no Prometheus at all is never a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from predictor.canary import queries
from predictor.canary.queries import Variant
from predictor.canary.spec import AnalysisSpec, format_duration

CANARY, STABLE = "canary", "stable"


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "value": self.value, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        return cls(str(data["name"]), bool(data["passed"]), data.get("value"), str(data.get("detail", "")))


@dataclass(frozen=True)
class AnalysisResult:
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def summary(self) -> str:
        if self.passed:
            return "all checks passed: " + ", ".join(f"{c.name} {c.detail}" for c in self.checks)
        return "; ".join(f"{c.name}: {c.detail}" for c in self.failed)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [check.to_dict() for check in self.checks]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisResult:
        return cls([Check.from_dict(item) for item in data.get("checks", [])])


@dataclass(frozen=True)
class Variants:
    canary: Variant
    stable: Variant
    knative: bool


def plan(spec: AnalysisSpec, variants: Variants) -> dict[str, str]:
    """The PromQL of every value the analysis needs, keyed ``<variant>.<what>`` / ``metric.<name>``."""
    window = format_duration(spec.window_seconds)
    canary_selector = queries.selector(variants.canary, variants.knative, spec.canary_selector)
    stable_selector = queries.selector(variants.stable, variants.knative, spec.stable_selector)
    sides = [(CANARY, variants.canary, canary_selector)]
    if spec.compare_stable is not None:
        sides.append((STABLE, variants.stable, stable_selector))
    planned: dict[str, str] = {}
    for side, variant, matchers in sides:
        for what, template in (
            ("requests", queries.REQUESTS),
            ("errors", queries.ERRORS),
            ("p99", queries.P99_SECONDS),
        ):
            planned[f"{side}.{what}"] = queries.render(template, variant, matchers, window)
    for check in spec.metrics:
        planned[f"metric.{check.name}"] = queries.render(
            check.query, variants.canary, canary_selector, window, stable_selector
        )
    return planned


def unavailable(spec: AnalysisSpec, reason: str) -> AnalysisResult:
    """Every check failed: the metrics could not be read at all."""
    names = ["request-success-rate", "request-duration-p99", *(check.name for check in spec.metrics)]
    return AnalysisResult([Check(name, False, None, f"no metrics: {reason}") for name in names])


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def _success_rate(values: dict[str, float | None], side: str, spec: AnalysisSpec) -> tuple[float | None, str]:
    """Percent of non-5xx answers, or None with the reason it cannot count."""
    requests = _number(values.get(f"{side}.requests"))
    if requests is None:
        return None, f"no data: no {side} series of servekit_requests_total in the window"
    if requests < spec.min_requests:
        return None, f"too few requests: {requests:g} < {spec.min_requests}"  # extrapolated: 19.6, not "20"
    errors = _number(values.get(f"{side}.errors")) or 0.0  # no 5xx series: none answered 5xx
    # Both counts come from one instant (MetricSource.values), so errors, a subset of the series,
    # cannot exceed requests; the clamp keeps a source that cannot promise that in 0..100.
    return max(0.0, 100.0 * (1.0 - errors / requests)), ""


def _percent(rate: float, minimum: float) -> str:
    """Two decimals, unless rounding would show a failing rate at its minimum (98.996 is not "99.00")."""
    shown = f"{rate:.2f}"
    if float(shown) >= minimum > rate:
        shown = f"{math.floor(rate * 10_000) / 10_000:.4f}"  # cut, never rounded up
    return shown


def _p99_ms(values: dict[str, float | None], side: str) -> float | None:
    seconds = _number(values.get(f"{side}.p99"))
    return None if seconds is None else seconds * 1000.0


def _rate_check(spec: AnalysisSpec, values: dict[str, float | None]) -> Check:
    rate, reason = _success_rate(values, CANARY, spec)
    name = "request-success-rate"
    if rate is None:
        return Check(name, False, None, reason)
    detail = f"{_percent(rate, spec.min_success_rate)}% (min {spec.min_success_rate:g}%)"
    return Check(name, rate >= spec.min_success_rate, rate, detail)


def _latency_check(spec: AnalysisSpec, values: dict[str, float | None]) -> Check:
    name = "request-duration-p99"
    _, reason = _success_rate(values, CANARY, spec)
    p99 = _p99_ms(values, CANARY)
    if reason:  # a p99 of a handful of requests says nothing
        return Check(name, False, p99, reason)
    if p99 is None:
        return Check(name, False, None, "no data: no servekit_request_duration_seconds buckets in the window")
    return Check(name, p99 <= spec.max_p99_ms, p99, f"{p99:.1f} ms (max {spec.max_p99_ms:g} ms)")


def _stable_checks(spec: AnalysisSpec, values: dict[str, float | None]) -> list[Check]:
    comparison = spec.compare_stable
    if comparison is None:
        return []
    canary_rate, _ = _success_rate(values, CANARY, spec)
    stable_rate, stable_reason = _success_rate(values, STABLE, spec)
    checks = []
    name = "success-rate-vs-stable"
    if canary_rate is None or stable_rate is None:
        checks.append(Check(name, False, None, stable_reason or "no canary success rate to compare"))
    else:
        drop = stable_rate - canary_rate
        detail = f"{drop:.2f} points below stable (max {comparison.max_success_rate_drop:g})"
        checks.append(Check(name, drop <= comparison.max_success_rate_drop, drop, detail))
    name = "p99-vs-stable"
    canary_p99, stable_p99 = _p99_ms(values, CANARY), _p99_ms(values, STABLE)
    if canary_p99 is None or stable_p99 is None or stable_reason:
        checks.append(Check(name, False, None, stable_reason or "no data: a p99 is missing"))
    else:
        ratio = canary_p99 / stable_p99 if stable_p99 > 0 else (1.0 if canary_p99 == 0 else math.inf)
        detail = f"{ratio:.2f}x stable (max {comparison.max_p99_ratio:g}x)"
        checks.append(Check(name, ratio <= comparison.max_p99_ratio, ratio, detail))
    return checks


def _custom_checks(spec: AnalysisSpec, values: dict[str, float | None]) -> list[Check]:
    checks = []
    for metric in spec.metrics:
        value = _number(values.get(f"metric.{metric.name}"))
        low = "-inf" if metric.min is None else f"{metric.min:g}"
        high = "+inf" if metric.max is None else f"{metric.max:g}"
        if value is None:
            checks.append(Check(metric.name, False, None, "no data: the query returned no number"))
            continue
        inside = (metric.min is None or value >= metric.min) and (metric.max is None or value <= metric.max)
        checks.append(Check(metric.name, inside, value, f"{value:g} (range [{low}, {high}])"))
    return checks


def evaluate(spec: AnalysisSpec, values: dict[str, float | None]) -> AnalysisResult:
    """The verdict on the values of ``plan``'s queries (a missing key is no data)."""
    return AnalysisResult(
        [
            _rate_check(spec, values),
            _latency_check(spec, values),
            *_stable_checks(spec, values),
            *_custom_checks(spec, values),
        ]
    )
