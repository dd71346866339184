"""The analysis settings, the PromQL it asks for and its verdicts (pure: no Prometheus here)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from predictor.canary import analysis, queries
from predictor.canary.analysis import Variants
from predictor.canary.queries import Variant
from predictor.canary.spec import AnalysisSpec, MetricCheck, parse_duration

STANDARD = Variants(Variant("models", "iris", predictor="v2"), Variant("models", "iris", predictor="v1"), knative=False)
KNATIVE = Variants(
    Variant("models", "iris", revision="iris-predictor-00002"),
    Variant("models", "iris", revision="iris-predictor-00001"),
    knative=True,
)
HEALTHY = {"canary.requests": 200.0, "canary.errors": None, "canary.p99": 0.040}


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("1m", 60), ("1m30s", 90), ("2h", 7200), ("45", 45), (2.5, 2.5), ("0.5s", 0.5)]
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1d", "ten", "-5", "0", "1m1m"])
def test_bad_durations_name_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_weights_from_steps_or_step_weight() -> None:
    assert AnalysisSpec().weights() == [10, 25, 50]
    assert AnalysisSpec(steps=[5, 20, 80]).weights() == [5, 20, 80]
    assert AnalysisSpec(step_weight=20, max_weight=60).weights() == [20, 40, 60]
    assert AnalysisSpec(step_weight=30, max_weight=80).weights() == [30, 60, 80]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"steps": [50, 10]}, "must rise strictly"),
        ({"steps": [10], "step_weight": 10, "max_weight": 20}, "not both"),
        ({"step_weight": 10}, "go together"),
        ({"step_weight": 50, "max_weight": 20}, "above maxWeight"),
        ({"steps": [10, 120]}, "less than or equal to 100"),
        ({"manual_gates": [30]}, "manual gates [30] are not among the steps"),
        ({"interval": "soon"}, "duration 'soon'"),
        ({"metrics": [{"name": "x", "query": "up"}]}, "needs min, max or both"),
        ({"metrics": [{"name": "x", "query": "up", "min": 2, "max": 1}]}, "min 2.0 is above max 1.0"),
        ({"webhooks": [{"name": "x", "type": "post-rollout", "url": "http://a"}]}, "pre-rollout"),
        ({"thresold": 3}, "Extra inputs are not permitted"),
    ],
)
def test_bad_analysis_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        AnalysisSpec.model_validate(fields)


def test_camel_case_names_as_in_the_crd() -> None:
    spec = AnalysisSpec.model_validate({"stepWeight": 10, "maxWeight": 30, "maxP99Ms": 250, "minRequests": 5})
    assert (spec.weights(), spec.max_p99_ms, spec.min_requests) == ([10, 20, 30], 250, 5)


def test_standard_queries_select_each_predictor_by_its_app_label() -> None:
    planned = analysis.plan(AnalysisSpec(interval="30s", compare_stable={}), STANDARD)
    assert planned["canary.requests"] == (
        'sum(increase(servekit_requests_total{namespace="models",app="isvc.iris-v2-predictor"}[30s]))'
    )
    assert planned["canary.errors"] == (
        'sum(increase(servekit_requests_total{namespace="models",app="isvc.iris-v2-predictor",code=~"5.."}[30s]))'
    )
    assert 'app="isvc.iris-v1-predictor"' in planned["stable.p99"]
    assert planned["stable.p99"].startswith("histogram_quantile(0.99, sum by (le) (rate(")


def test_knative_queries_select_each_revision() -> None:
    planned = analysis.plan(AnalysisSpec(window="2m"), KNATIVE)
    assert 'serving_knative_dev_revision="iris-predictor-00002"' in planned["canary.requests"]
    assert "[2m]" in planned["canary.p99"]
    assert not any(key.startswith("stable.") for key in planned), "no stable queries without compareStable"


def test_selector_overrides_and_custom_checks_are_templates() -> None:
    spec = AnalysisSpec(
        canary_selector='job="canary",isvc="$isvc"',
        metrics=[{"name": "mean-latency", "query": "avg_over_time(x{$selector}[$window])", "max": 0.2}],
    )
    planned = analysis.plan(spec, STANDARD)
    assert planned["canary.requests"] == 'sum(increase(servekit_requests_total{job="canary",isvc="iris"}[1m]))'
    assert planned["metric.mean-latency"] == 'avg_over_time(x{job="canary",isvc="iris"}[1m])'


def test_a_custom_check_compares_with_the_stable_through_stable_selector() -> None:
    spec = AnalysisSpec(
        stable_selector='job="stable",isvc="$isvc"',
        metrics=[{"name": "drop", "query": "avg(a{$stable_selector}) - avg(a{$selector})", "max": 0.02}],
    )
    planned = analysis.plan(spec, STANDARD)
    assert (
        planned["metric.drop"]
        == 'avg(a{job="stable",isvc="iris"}) - avg(a{namespace="models",app="isvc.iris-v2-predictor"})'
    )
    assert not any(key.startswith("stable.") for key in planned), "compareStable's queries stay off"


def test_the_model_checks_are_filled_for_both_sides() -> None:
    spec = AnalysisSpec(
        window="5m",
        metrics=[
            {"name": "shift", "query": queries.PREDICTION_SHIFT, "max": 0.1},
            {"name": "drift", "query": queries.INPUT_DRIFT, "max": 0.25},
            {"name": "accuracy-drop", "query": queries.ACCURACY_DROP, "max": 0.02},
        ],
    )
    planned = analysis.plan(spec, STANDARD)
    canary, stable = 'app="isvc.iris-v2-predictor"', 'app="isvc.iris-v1-predictor"'
    assert planned["metric.shift"].count(canary) == 5 and planned["metric.shift"].count(stable) == 5
    assert "$" not in planned["metric.shift"] and "[5m]" in planned["metric.shift"]
    assert planned["metric.drift"] == f'max(servekit_input_drift{{namespace="models",{canary}}})'
    stable_accuracy = f'avg(servekit_live_accuracy{{namespace="models",{stable}}})'
    canary_accuracy = f'avg(servekit_live_accuracy{{namespace="models",{canary}}})'
    assert planned["metric.accuracy-drop"] == f"{stable_accuracy} - {canary_accuracy}"


def test_unknown_placeholder_names_the_known_ones_when_the_spec_is_read() -> None:
    # Not at the first analysis, with the canary already at its first weight.
    with pytest.raises(ValidationError, match=r"uses \$pod; known placeholders: app, isvc, namespace"):
        AnalysisSpec(canary_selector='pod="$pod"')
    with pytest.raises(ValidationError, match=r"uses \$pod"):
        AnalysisSpec(stable_selector='pod="$pod"')  # even without compareStable


def test_a_literal_dollar_is_written_twice() -> None:
    with pytest.raises(ValidationError, match=r"Invalid placeholder.*write \$\$ for a literal \$"):
        AnalysisSpec(metrics=[MetricCheck(name="m", query='sum(x{path=~"/v1/.*$"})', max=1)])
    query = 'sum(rate(x{path=~"/v1/.*$$",$selector}[$window]))'
    spec = AnalysisSpec(metrics=[MetricCheck(name="m", query=query, max=1)])
    assert analysis.plan(spec, STANDARD)["metric.m"].startswith('sum(rate(x{path=~"/v1/.*$",namespace=')


def checks(result: analysis.AnalysisResult) -> dict[str, tuple[bool, str]]:
    return {check.name: (check.passed, check.detail) for check in result.checks}


def test_a_healthy_canary_passes() -> None:
    result = analysis.evaluate(AnalysisSpec(), HEALTHY)
    assert result.passed, result.summary()
    assert checks(result)["request-success-rate"] == (True, "100.00% (min 99%)")
    assert checks(result)["request-duration-p99"] == (True, "40.0 ms (max 500 ms)")


def test_errors_fail_the_success_rate() -> None:
    result = analysis.evaluate(AnalysisSpec(), {**HEALTHY, "canary.errors": 10.0})
    assert not result.passed
    assert checks(result)["request-success-rate"] == (False, "95.00% (min 99%)")


def test_the_success_rate_stays_at_zero_when_errors_count_above_requests() -> None:
    """Seen on real Prometheus: two instant queries of increase() extrapolate apart."""
    result = analysis.evaluate(AnalysisSpec(), {**HEALTHY, "canary.requests": 100.0, "canary.errors": 100.01})
    assert checks(result)["request-success-rate"] == (False, "0.00% (min 99%)")


def test_latency_fails_the_p99() -> None:
    result = analysis.evaluate(AnalysisSpec(max_p99_ms=100), {**HEALTHY, "canary.p99": 0.8})
    assert checks(result)["request-duration-p99"] == (False, "800.0 ms (max 100 ms)")
    assert checks(result)["request-success-rate"][0]


@pytest.mark.parametrize(
    "values",
    [{}, {"canary.requests": None}, {"canary.requests": math.nan}, {"canary.requests": 100.0, "canary.p99": math.nan}],
    ids=["no-series", "empty-vector", "nan-requests", "nan-p99"],
)
def test_no_data_is_never_a_pass(values: dict[str, float | None]) -> None:
    result = analysis.evaluate(AnalysisSpec(), values)
    assert not result.passed
    assert all("no data" in check.detail or "requests" in check.detail for check in result.failed)


def test_too_few_requests_fail_both_checks() -> None:
    result = analysis.evaluate(AnalysisSpec(min_requests=50), {**HEALTHY, "canary.requests": 12.0})
    assert not result.passed
    for name in ("request-success-rate", "request-duration-p99"):
        assert checks(result)[name] == (False, "too few requests: 12 < 50")


def test_messages_never_round_a_failure_onto_its_limit() -> None:
    # increase() extrapolates: 19.6 requests is too few for 20, and must not read "20 < 20".
    result = analysis.evaluate(AnalysisSpec(), {**HEALTHY, "canary.requests": 19.6})
    assert checks(result)["request-success-rate"] == (False, "too few requests: 19.6 < 20")
    result = analysis.evaluate(AnalysisSpec(), {**HEALTHY, "canary.requests": 1000.0, "canary.errors": 10.04})
    assert checks(result)["request-success-rate"] == (False, "98.9960% (min 99%)")


def test_a_webhook_url_that_is_not_one_is_refused_when_read() -> None:
    bad = {"http://[::1/x": "is not a URL", "http://gate:abc/": "is not a URL", "https://": "no host"}
    for url, problem in bad.items():
        with pytest.raises(ValidationError, match=problem):
            AnalysisSpec(webhooks=[{"name": "g", "type": "confirm-rollout", "url": url}])


def test_no_prometheus_fails_every_check() -> None:
    spec = AnalysisSpec(metrics=[{"name": "budget", "query": "up", "min": 1}])
    result = analysis.unavailable(spec, "connection refused")
    assert [c.name for c in result.failed] == ["request-success-rate", "request-duration-p99", "budget"]
    assert all(c.detail == "no metrics: connection refused" for c in result.checks)


def test_comparison_with_the_stable_predictor() -> None:
    spec = AnalysisSpec(compare_stable={"max_success_rate_drop": 1, "max_p99_ratio": 1.5})
    stable = {"stable.requests": 1000.0, "stable.errors": 0.0, "stable.p99": 0.030}
    assert analysis.evaluate(spec, {**HEALTHY, **stable}).passed
    slower = analysis.evaluate(spec, {**HEALTHY, **stable, "canary.p99": 0.060})
    assert checks(slower)["p99-vs-stable"] == (False, "2.00x stable (max 1.5x)")
    no_stable = analysis.evaluate(spec, HEALTHY)
    assert checks(no_stable)["success-rate-vs-stable"][0] is False
    assert "no data" in checks(no_stable)["success-rate-vs-stable"][1]


def test_custom_checks_use_their_range() -> None:
    spec = AnalysisSpec(
        metrics=[
            {"name": "in-range", "query": "a", "min": 0.5, "max": 1.0},
            {"name": "too-high", "query": "b", "max": 1.0},
            {"name": "missing", "query": "c", "min": 0},
        ]
    )
    result = analysis.evaluate(spec, {**HEALTHY, "metric.in-range": 0.7, "metric.too-high": 3.0})
    assert checks(result)["in-range"] == (True, "0.7 (range [0.5, 1])")
    assert checks(result)["too-high"] == (False, "3 (range [-inf, 1])")
    assert checks(result)["missing"] == (False, "no data: the query returned no number")


def test_results_round_trip_through_json_shapes() -> None:
    result = analysis.evaluate(AnalysisSpec(), {**HEALTHY, "canary.errors": 50.0})
    assert analysis.AnalysisResult.from_dict(result.to_dict()) == result
    assert result.to_dict()["passed"] is False
