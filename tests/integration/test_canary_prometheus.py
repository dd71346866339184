"""Canary analysis on real metrics: Debian's Prometheus scrapes real predictor processes, labelled
as the chart's ServiceMonitor labels them, and the rollout promotes or rolls back on what it finds.

- Each predictor is a real ``python -m predictor`` on a loopback port: a healthy iris canary, one
  whose model raises (the predictor answers 500), one whose model sleeps (tests/integration/
  faulty_estimator.py), and the stable iris server.
- The scrape config is derived from the rendered ServiceMonitor: its relabelings become
  ``relabel_configs``, and each static target carries the ``__meta_kubernetes_*`` labels that
  Kubernetes service discovery would set for a KServe pod (``app=isvc.<isvc>-<name>-predictor``,
  ``serving.knative.dev/revision``, namespace). So the queries of the analysis meet exactly the
  series a cluster would have.
- The InferenceService side is the in-memory store of tests/unit/canary_edges.py: an injected edge
  implementing the same protocol as the Kubernetes edge, not an imitation of Kubernetes. Traffic is
  sent to each predictor directly (routing by weight is KServe's job, tested on the control plane).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest
import yaml

from predictor.artifacts import sha256_of
from predictor.canary import isvc, rollout
from predictor.canary.prometheus import PrometheusSource
from predictor.canary.rollout import Edges
from predictor.canary.spec import AnalysisSpec
from predictor.canary.state import TERMINAL, Phase, RolloutState
from predictor.spec import ModelSpec, dump_spec
from tests.chart.rendering import CHART_DIR, NAMESPACE, ci_values, render
from tests.integration.faulty_estimator import FaultyEstimator
from tests.integration.server import Server, free_port
from tests.integration.test_prometheus import query, wait_until
from tests.unit.canary_edges import MemoryEdges, knative_isvc, knative_reports, standard_isvc, standard_status

ROW = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
TRAFFIC_SECONDS = 300  # the driver stops by itself after this, whatever happens
SPEC = AnalysisSpec(
    steps=[20, 50], interval="3s", window="10s", threshold=2, min_requests=10, max_p99_ms=200,
    progress_deadline="30s",
)  # fmt: skip
ROLLOUT_SECONDS = 60


def analysis_with(**changes: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate({**SPEC.model_dump(), **changes})


def faulty_model(path: Path, estimator: FaultyEstimator) -> Path:
    """An iris-shaped model directory whose predictions come from ``estimator``."""
    path.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, path / "model.joblib")
    spec = ModelSpec.model_validate(
        {
            "name": "iris",
            "framework": "sklearn",
            "artifact": {"path": "model.joblib", "sha256": sha256_of(path / "model.joblib")},
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1], "source": "raw"}],
        }
    )
    dump_spec(spec, path)
    return path


@pytest.fixture(scope="module")
def canaries(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[dict[str, Server]]:
    models = tmp_path_factory.mktemp("canary-models")
    servers = {
        "healthy": Server(iris_dir, "iris"),
        "failing": Server(faulty_model(models / "failing", FaultyEstimator(fail=True)), "iris"),
        "slow": Server(faulty_model(models / "slow", FaultyEstimator(seconds=0.6)), "iris"),
    }
    logs = tmp_path_factory.mktemp("canary-logs")
    started: list[Server] = []
    try:
        for name, server in servers.items():
            started.append(server.start(logs / f"{name}.log"))
        yield servers
    finally:
        for server in started:
            server.stop()


def relabel_configs(monitor: dict[str, Any]) -> list[dict[str, Any]]:
    """The ServiceMonitor's relabelings as Prometheus writes them (the operator's translation)."""
    names = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    (endpoint,) = monitor["spec"]["endpoints"]
    return [{names.get(key, key): value for key, value in rule.items()} for rule in endpoint["relabelings"]]


def pod_target(server: Server, isvc_name: str, app: str, revision: str | None = None) -> dict[str, Any]:
    """One static target with the labels Kubernetes service discovery gives a KServe pod."""
    labels = {
        "__meta_kubernetes_namespace": NAMESPACE,
        "__meta_kubernetes_pod_label_app": app,
        "__meta_kubernetes_pod_label_component": "predictor",
        "__meta_kubernetes_pod_label_serving_kserve_io_inferenceservice": isvc_name,
    }
    if revision:
        labels["__meta_kubernetes_pod_label_serving_knative_dev_revision"] = revision
    return {"targets": [f"127.0.0.1:{server.http_port}"], "labels": labels}


def targets(stable: Server, canaries: dict[str, Server]) -> list[dict[str, Any]]:
    found = []
    for name in ("healthy", "failing", "slow", "silent"):
        found.append(pod_target(stable, name, f"isvc.{name}-v1-predictor"))
        if name in canaries:  # "silent": a canary whose pods are never scraped
            found.append(pod_target(canaries[name], name, f"isvc.{name}-v2-predictor"))
    found.append(pod_target(stable, "kn", "kn-predictor-00001", revision="kn-predictor-00001"))
    found.append(pod_target(canaries["healthy"], "kn", "kn-predictor-00002", revision="kn-predictor-00002"))
    return found


def drive(server: Server, stop: threading.Event) -> None:
    """Requests until told to stop, or until TRAFFIC_SECONDS have passed (loopback only)."""
    deadline = time.monotonic() + TRAFFIC_SECONDS
    with httpx.Client(base_url=server.url, timeout=10) as client:
        while not stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                client.post("/v2/models/iris/infer", json=ROW)
            stop.wait(0.03)


@pytest.fixture(scope="module")
def prometheus(
    iris_server: Server, canaries: dict[str, Server], tmp_path_factory: pytest.TempPathFactory, chart: Any
) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: apt-get install prometheus (.ci/run does)", pytrace=False)
    monitor = render(chart, ci_values(CHART_DIR / "ci" / "standard-canary-values.yaml")).one("ServiceMonitor")
    work = tmp_path_factory.mktemp("prometheus-canary")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "servekit",
                "static_configs": targets(iris_server, canaries),
                "relabel_configs": relabel_configs(monitor),
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    stop = threading.Event()
    drivers = [threading.Thread(target=drive, args=(s, stop), daemon=True) for s in [iris_server, *canaries.values()]]
    with (work / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, 30, "Prometheus ready")
        wait_until(lambda: len(query(url, 'up{job="servekit"} == 1')) == 9, 30, "every target scraped")
        for driver in drivers:
            driver.start()
        for app in ("isvc.healthy-v2-predictor", "isvc.failing-v2-predictor", "isvc.slow-v2-predictor"):
            promql = f'sum(increase(servekit_requests_total{{app="{app}"}}[10s])) > 10'
            wait_until(lambda promql=promql: bool(query(url, promql)), 60, f"traffic on {app}")
        yield url
    finally:
        stop.set()
        for driver in drivers:
            if driver.is_alive():
                driver.join(timeout=15)
        process.terminate()
        process.wait(timeout=10)


def run_rollout(memory: MemoryEdges, prometheus_url: str, name: str, spec: AnalysisSpec = SPEC) -> RolloutState:
    """The real rollout loop on the real clock, until it ends (bounded)."""
    source = PrometheusSource(prometheus_url)
    edges = Edges(memory.isvcs, memory.history, memory.events, source, memory.webhooks)
    current = RolloutState()
    deadline = time.monotonic() + ROLLOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            current = rollout.step(edges, spec, NAMESPACE, name, current)
            if current.phase in TERMINAL and current.finished:
                return current
            time.sleep(0.5)
    finally:
        source.close()
    raise AssertionError(f"rollout of {name} did not end in {ROLLOUT_SECONDS} s: {current}")


def standard_canary(name: str) -> MemoryEdges:
    memory = MemoryEdges()
    memory.isvcs.add(isvc.start(standard_isvc(name, namespace=NAMESPACE), "v2", storage_uri=f"s3://m/{name}/v2"))
    memory.isvcs.set_status(NAMESPACE, name, standard_status("v2", ready=True))
    return memory


def actions(memory: MemoryEdges, name: str) -> list[str]:
    return [entry.action for entry in memory.history.read(NAMESPACE, name)]


def test_a_healthy_canary_is_promoted(prometheus: str) -> None:
    memory = standard_canary("healthy")
    spec = analysis_with(compare_stable={"max_success_rate_drop": 1, "max_p99_ratio": 50})
    final = run_rollout(memory, prometheus, "healthy", spec)
    assert final.phase == Phase.SUCCEEDED, final.message
    assert memory.isvcs.get(NAMESPACE, "healthy")["spec"]["predictor"]["name"] == "v2"
    assert actions(memory, "healthy") == ["set-weight", "set-weight", "promote"]
    checks = {check.name: check for check in final.analysis().checks}  # type: ignore[union-attr]
    assert checks["request-success-rate"].value == 100.0
    assert checks["success-rate-vs-stable"].passed and checks["p99-vs-stable"].passed
    assert memory.events.reasons() == ["Started", "Advanced", "Promoted"]


def test_a_failing_canary_is_rolled_back(prometheus: str) -> None:
    memory = standard_canary("failing")
    final = run_rollout(memory, prometheus, "failing")
    assert final.phase == Phase.FAILED
    assert "request-success-rate: 0.00% (min 99%)" in final.message
    assert "canary" not in memory.isvcs.get(NAMESPACE, "failing")["spec"]
    assert "promote" not in actions(memory, "failing")


def test_a_slow_canary_is_rolled_back(prometheus: str) -> None:
    memory = standard_canary("slow")
    final = run_rollout(memory, prometheus, "slow")
    assert final.phase == Phase.FAILED
    checks = {check.name: check for check in final.analysis().checks}  # type: ignore[union-attr]
    p99 = checks["request-duration-p99"]
    assert not p99.passed and p99.value is not None and p99.value > 500, p99
    assert checks["request-success-rate"].passed, "slow, not failing"
    assert memory.isvcs.get(NAMESPACE, "slow")["spec"]["predictor"]["name"] == "v1"


def test_a_canary_without_series_is_never_promoted(prometheus: str) -> None:
    memory = standard_canary("silent")
    final = run_rollout(memory, prometheus, "silent")
    assert final.phase == Phase.FAILED
    assert "no data" in final.message
    assert "promote" not in actions(memory, "silent")
    assert memory.isvcs.get(NAMESPACE, "silent")["spec"]["predictor"]["name"] == "v1"


def test_no_prometheus_is_never_a_pass() -> None:
    memory = standard_canary("healthy")
    final = run_rollout(memory, f"http://127.0.0.1:{free_port()}", "healthy", analysis_with(interval="1s"))
    assert final.phase == Phase.FAILED and "cannot be reached" in final.message


def test_a_knative_canary_revision_is_promoted(prometheus: str) -> None:
    memory = MemoryEdges()
    memory.isvcs.add(isvc.start(knative_isvc("kn", NAMESPACE), "v2", image="servekit/predictor:0.2.0", weight=0))
    memory.isvcs.kserve = knative_reports("kn-predictor-00002", "kn-predictor-00001")
    final = run_rollout(memory, prometheus, "kn")
    assert final.phase == Phase.SUCCEEDED, final.message
    assert "canaryTrafficPercent" not in memory.isvcs.get(NAMESPACE, "kn")["spec"]["predictor"]
