"""A real Prometheus scrapes the predictor; the queries the chart, the manifests and the Grafana
dashboard ship must be valid PromQL that finds the predictor's series.

Prometheus comes from Debian (`apt-get install prometheus`; .ci/run installs it). The scrape adds
the `namespace` and `pod` target labels a ServiceMonitor adds in a cluster.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.support.prometheus import query, wait_until
from tests.support.rendering import NAMESPACE, RELEASE, REPO_ROOT, ci_values, render
from tests.support.server import Server, free_port

DASHBOARD = REPO_ROOT / "helm" / "servekit" / "dashboards" / "servekit-predictor.json"
KEDA_OVERLAY = REPO_ROOT / "manifests" / "overlays" / "standard-keda" / "autoscaling.yaml"
POD = "iris-predictor-5d8f7c9b6-x2x7q"  # what KServe names a Standard-mode predictor pod


@pytest.fixture(scope="module")
def prometheus(iris_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: apt-get install prometheus (.ci/run does)", pytrace=False)
    work = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "servekit",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{iris_server.http_port}"],
                        # What the chart's ServiceMonitor puts on the series of its release's pods.
                        "labels": {"namespace": NAMESPACE, "pod": POD, "inferenceservice": f"{RELEASE}-servekit"},
                    }
                ],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (work / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, 30, "Prometheus ready")
        # rate() needs two scrapes that saw the traffic.
        # The first scrape comes a few seconds after ready (service discovery settles first); traffic
        # before it would be one flat sample, and rate() needs two that differ.
        wait_until(lambda: bool(query(url, 'up{job="servekit"} == 1')), 30, "the first scrape")
        drive_traffic(iris_server)
        wait_until(lambda: bool(query(url, "rate(servekit_requests_total[1m]) > 0")), 30, "a request rate")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def drive_traffic(server: Server) -> None:
    good = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
    bad = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3], "data": [5.1, 3.5, 1.4]}]}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(4):  # spread over several scrapes
            for _ in range(25):
                assert client.post("/v2/models/iris/infer", json=good).status_code == 200
            assert client.post("/v2/models/iris/infer", json=bad).status_code == 400
            assert client.post("/v1/models/iris:predict", json={"instances": [[6.7, 3.0, 5.2, 2.3]]}).status_code == 200
            time.sleep(1.1)


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert found, "the dashboard has no queries"
    return found


def grafana_to_promql(expr: str) -> str:
    return expr.replace("$__rate_interval", "1m").replace("$namespace", NAMESPACE).replace("$model", "iris")


def test_every_dashboard_query_is_valid_promql(prometheus: str) -> None:
    for title, expr in dashboard_queries():
        promql = grafana_to_promql(expr)
        assert "$" not in promql, f"panel {title!r} uses a dashboard variable the test does not know: {expr}"
        query(prometheus, promql)  # asserts success, naming the query


@pytest.mark.parametrize(
    "title_fragment", ["Requests", "latency", "Batch", "Queue depth"], ids=lambda t: t.lower().replace(" ", "-")
)
def test_dashboard_panels_find_the_predictor(prometheus: str, title_fragment: str) -> None:
    panels = [(t, e) for t, e in dashboard_queries() if title_fragment.lower() in t.lower()]
    assert panels, f"no panel titled like {title_fragment!r}"
    for title, expr in panels:
        assert query(prometheus, grafana_to_promql(expr)), f"panel {title!r} finds no series: {expr}"


def test_request_counts_by_protocol_and_code(prometheus: str) -> None:
    series = query(prometheus, f'servekit_requests_total{{namespace="{NAMESPACE}",model="iris"}}')
    counts = {(s["metric"]["protocol"], s["metric"]["code"]): float(s["value"][1]) for s in series}
    assert counts[("v2", "200")] >= 100
    assert counts[("v2", "400")] >= 4
    assert counts[("v1", "200")] >= 4


def test_keda_query_of_the_kustomize_overlay_scales_on_traffic(prometheus: str) -> None:
    isvc = yaml.safe_load(KEDA_OVERLAY.read_text())
    metrics = isvc["spec"]["predictor"]["autoScaling"]["metrics"]
    promql = metrics[0]["external"]["metric"]["query"]
    result = query(prometheus, promql)
    assert result and float(result[0]["value"][1]) > 0, promql


def test_keda_query_of_the_chart_scales_on_traffic(prometheus: str, chart: Any) -> None:
    rendered = render(chart, ci_values(REPO_ROOT / "helm" / "servekit" / "ci" / "standard-keda-values.yaml"))
    isvc = next(o for o in rendered.objects if o["kind"] == "InferenceService")
    promql = isvc["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]["metric"]["query"]
    result = query(prometheus, promql)
    assert result and float(result[0]["value"][1]) > 0, promql
