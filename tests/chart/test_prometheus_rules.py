"""The chart's PrometheusRule: valid for Prometheus (``promtool check rules``), built on metrics the
predictor exports, and firing on the series it should (``promtool test rules``)."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from prometheus_client import REGISTRY

from tests.support.rendering import NAMESPACE, render

ENABLED = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}}
# The modules that define every metric the predictor serves; importing them registers the metrics.
METRIC_MODULES = ("predictor.server.metrics", "predictor.monitoring.monitor", "predictor.monitoring.drift")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def rules(chart: helm_python.Chart) -> dict[str, Any]:
    rule = render(chart, ENABLED).one("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    return rule


def exported_series() -> set[str]:
    for module in METRIC_MODULES:
        importlib.import_module(module)
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("servekit_")
        for suffix in _SUFFIXES.get(family.type, ("",))
    }


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian's prometheus package has it; make test-tools installs it)")
    return path


def test_the_rules_use_only_series_the_predictor_exports(chart: helm_python.Chart) -> None:
    exported = exported_series()
    (group,) = rules(chart)["spec"]["groups"]
    used = {name for rule in group["rules"] for name in re.findall(r"\b(servekit_[a-z_]+)\{", rule["expr"])}
    assert {"servekit_input_drift", "servekit_live_accuracy", "servekit_requests_total"} <= used
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    alerts = [rule["alert"] for rule in group["rules"]]
    assert alerts == ["ServekitInputDrift", "ServekitAccuracyDrop", "ServekitErrorRate", "ServekitLatencyHigh"]


def test_the_rules_need_the_service_monitors_labels(chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=r"metrics\.prometheusRule selects the predictor's series"):
        render(chart, {"metrics": {"prometheusRule": {"enabled": True}}})


def write_rules(chart: helm_python.Chart, tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rules(chart)["spec"]["groups"]}))
    return path


def test_promtool_accepts_the_rules(chart: helm_python.Chart, tmp_path: Path) -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(write_rules(chart, tmp_path))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout, result.stdout


def fires(rule_set: dict[str, Any], alert: str, at: str, summary: str, **labels: str) -> dict[str, Any]:
    """A promtool alert test: ``alert`` firing at ``at`` with ``summary``, the rule's own description."""
    (group,) = rule_set["spec"]["groups"]
    (rule,) = [r for r in group["rules"] if r.get("alert") == alert]
    isvc = rule_set["metadata"]["name"]
    base = {"severity": "warning", "namespace": NAMESPACE, "inferenceservice": isvc, "model": "iris"}
    annotations = {"summary": summary, "description": rule["annotations"]["description"]}
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [{"exp_labels": {**base, **labels}, "exp_annotations": annotations}],
    }


def silent(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def test_the_alerts_fire_on_drift_errors_latency_and_accuracy_and_not_on_healthy_series(
    chart: helm_python.Chart, tmp_path: Path
) -> None:
    rule_set = rules(chart)
    where = f'namespace="{NAMESPACE}", inferenceservice="{rule_set["metadata"]["name"]}", model="iris"'
    other_release = 'namespace="other", inferenceservice="x", model="m"'
    duration = f'servekit_request_duration_seconds_bucket{{{where}, protocol="v2", le='
    busy = [
        # feature 2 drifted, feature 0 did not; another release's drift is not ours
        {"series": f'servekit_input_drift{{{where}, input="x", feature="2"}}', "values": "0.5x30"},
        {"series": f'servekit_input_drift{{{where}, input="x", feature="0"}}', "values": "0.05x30"},
        {"series": f'servekit_input_drift{{{other_release}, input="x", feature="0"}}', "values": "9x30"},
        # 10 % of requests are 500s; every request takes between 0.5 and 1 s
        {"series": f'servekit_requests_total{{{where}, protocol="v2", code="200"}}', "values": "0+540x30"},
        {"series": f'servekit_requests_total{{{where}, protocol="v2", code="500"}}', "values": "0+60x30"},
        {"series": duration + '"0.5"}', "values": "0x30"},
        {"series": duration + '"1.0"}', "values": "0+600x30"},
        {"series": duration + '"+Inf"}', "values": "0+600x30"},
        # a steady accuracy: no drop
        {"series": f"servekit_live_accuracy{{{where}}}", "values": "0.95x30"},
    ]
    # accuracy 0.95, then 0.7 from minute 10: a drop of 0.25 that lasts
    dropping = [{"series": f"servekit_live_accuracy{{{where}}}", "values": "0.95x10 0.7x50"}]
    tests = {
        "rule_files": [str(write_rules(chart, tmp_path))],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": busy,
                "alert_rule_test": [
                    silent("ServekitInputDrift", "10m"),  # not for 15 minutes yet
                    fires(
                        rule_set,
                        "ServekitInputDrift",
                        "20m",
                        "Input x feature 2 of model iris drifted (PSI 0.50)",
                        input="x",
                        feature="2",
                    ),
                    fires(rule_set, "ServekitErrorRate", "20m", "Model iris answers 10% of requests with 5xx"),
                    fires(rule_set, "ServekitLatencyHigh", "20m", "p99 latency of model iris is 995ms"),
                    silent("ServekitAccuracyDrop", "29m"),
                ],
            },
            {
                "interval": "1m",
                "input_series": dropping,
                "alert_rule_test": [
                    silent("ServekitAccuracyDrop", "30m"),  # dropped 20 minutes ago: not for 30 yet
                    fires(rule_set, "ServekitAccuracyDrop", "45m", "Live accuracy of model iris fell by 0.25"),
                ],
            },
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [promtool(), "test", "rules", str(tmp_path / "tests.yaml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
