"""hack/controlplane/monitors_to_scrape_config.py: the chart's ServiceMonitor as the scrape job
Prometheus runs in the control plane, checked by Prometheus' own promtool."""

from __future__ import annotations

import importlib.util
import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import helm_python
import pytest
import yaml

from tests.support.rendering import CHART_DIR, REPO_ROOT, ci_values, render

SCRIPT = REPO_ROOT / "hack" / "controlplane" / "monitors_to_scrape_config.py"
TARGETS = Path("/state/prometheus/targets")


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("monitors_to_scrape_config", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


translate = load_script()


def chart_monitor(chart: helm_python.Chart) -> dict[str, Any]:
    return render(chart, ci_values(CHART_DIR / "ci" / "standard-canary-values.yaml")).one("ServiceMonitor")


def test_the_charts_service_monitor_becomes_one_endpoints_job(chart: helm_python.Chart) -> None:
    monitor = chart_monitor(chart)
    monitor["metadata"]["namespace"] = "models"
    config, refused = translate.configuration([monitor], TARGETS)
    assert refused == []
    (job,) = config["scrape_configs"]
    assert job["job_name"] == f"serviceMonitor/models/{monitor['metadata']['name']}/0"
    assert job["file_sd_configs"][0]["files"] == [
        str(TARGETS / f"serviceMonitor_models_{translate.sanitize(monitor['metadata']['name'])}_0.json")
    ]
    endpoint = monitor["spec"]["endpoints"][0]
    assert job["metrics_path"] == endpoint["path"]
    assert job["scrape_interval"] == endpoint["interval"]
    rules = job["relabel_configs"]
    # The Service selector first, then the port, then the monitor's own relabelings, in order, last.
    keeps = [rule for rule in rules if rule.get("action") == "keep"]
    selected = {rule["source_labels"][0].removeprefix("__meta_kubernetes_service_label_") for rule in keeps[:-1]}
    assert selected == {translate.sanitize(key) for key in monitor["spec"]["selector"]["matchLabels"]}
    assert keeps[-1] == {
        "source_labels": ["__meta_kubernetes_endpoint_port_name"],
        "regex": "http\\-metrics",
        "action": "keep",
    }
    own = [{"source_labels": r["sourceLabels"], "target_label": r["targetLabel"]} for r in endpoint["relabelings"]]
    assert rules[-len(own) :] == own


def test_a_field_it_does_not_know_is_refused_by_name() -> None:
    monitor = {
        "kind": "ServiceMonitor",
        "metadata": {"name": "m", "namespace": "ns"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "endpoints": [{"port": "web", "bearerTokenFile": "/t"}]},
    }
    config, refused = translate.configuration([monitor], TARGETS)
    assert config["scrape_configs"] == []
    assert refused == ["ServiceMonitor ns/m: not scraped, it uses endpoint fields ['bearerTokenFile']"]


def test_discovery_gives_the_endpoints_roles_labels_for_pods_on_the_node_only() -> None:
    service = {
        "kind": "Service",
        "metadata": {
            "name": "iris-predictor",
            "namespace": "models",
            "labels": {"app.kubernetes.io/component": "metrics"},
        },
    }
    pod = {
        "kind": "Pod",
        "metadata": {"name": "iris-1", "namespace": "models", "labels": {"app": "isvc.iris-predictor"}},
        "spec": {
            "nodeName": "servekit-node",
            "containers": [{"name": "kserve-container", "ports": [{"name": "http", "containerPort": 8080}]}],
        },
        "status": {"podIP": "10.246.0.7", "phase": "Running"},
    }
    address = {"ip": "10.246.0.7", "targetRef": {"kind": "Pod", "name": "iris-1"}}
    simulated = {"ip": "10.244.3.3"}  # a kwok pod: nothing answers there
    endpoints = {
        "kind": "Endpoints",
        "metadata": {"name": "iris-predictor", "namespace": "models"},
        "subsets": [{"addresses": [address, simulated], "ports": [{"name": "http-metrics", "port": 8080}]}],
    }
    monitor = {
        "kind": "ServiceMonitor",
        "metadata": {"name": "m", "namespace": "models"},
        "spec": {"selector": {}, "endpoints": [{"port": "http-metrics"}]},
    }
    cluster = translate.Cluster([service, pod, endpoints, monitor])
    (group,) = translate.endpoints_targets(monitor, cluster, ipaddress.ip_network("10.246.0.0/24"))
    assert group["targets"] == ["10.246.0.7:8080"]
    labels = group["labels"]
    assert labels["__meta_kubernetes_endpoint_port_name"] == "http-metrics"
    assert labels["__meta_kubernetes_service_label_app_kubernetes_io_component"] == "metrics"
    assert labels["__meta_kubernetes_pod_label_app"] == "isvc.iris-predictor"
    assert labels["__meta_kubernetes_pod_container_name"] == "kserve-container"
    assert labels["__meta_kubernetes_endpoint_ready"] == "true"


def test_prometheus_accepts_the_configuration(chart: helm_python.Chart, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool (Debian's prometheus package; hack/install-test-tools.sh)")
    pod_monitor = {
        "kind": "PodMonitor",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "podMetricsEndpoints": [{"port": "metrics"}]},
    }
    config, refused = translate.configuration([chart_monitor(chart), pod_monitor], tmp_path)
    assert refused == [] and len(config["scrape_configs"]) == 2
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
