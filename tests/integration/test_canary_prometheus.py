"""Canary analysis on real metrics: Debian's Prometheus scrapes real predictor processes, labelled
as the chart's ServiceMonitor labels them, and the rollout promotes or rolls back on what it finds.

- Each predictor is a real ``python -m predictor`` on a loopback port: a healthy iris canary, one
  whose model raises (the predictor answers 500), one whose model sleeps, one that predicts
  another class for every row (tests/integration/faulty_estimator.py), and the stable iris server.
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

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from predictor.canary import isvc, queries, rollout
from predictor.canary.prometheus import PrometheusSource
from predictor.canary.rollout import Edges
from predictor.canary.spec import AnalysisSpec
from predictor.canary.state import TERMINAL, Phase, RolloutState
from tests.integration.faulty_estimator import FaultyEstimator
from tests.support.canary_edges import MemoryEdges, knative_isvc, knative_reports, standard_isvc, standard_status
from tests.support.canary_metrics import (
    ScrapingPrometheus,
    TrafficDriver,
    canary_servers,
    chart_service_monitor,
    faulty_model,
    pod_target,
)
from tests.support.prometheus import query, wait_until
from tests.support.rendering import NAMESPACE
from tests.support.server import Server, free_port

SPEC = AnalysisSpec(
    steps=[20, 50], interval="3s", window="10s", threshold=2, min_requests=10, max_p99_ms=200,
    progress_deadline="30s",
)  # fmt: skip
ROLLOUT_SECONDS = 60


def analysis_with(**changes: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate({**SPEC.model_dump(), **changes})


@pytest.fixture(scope="module")
def canaries(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[dict[str, Server]]:
    models = tmp_path_factory.mktemp("canary-models")
    servers = canary_servers(models, iris_dir)
    # Answers every request, fast, with class 1 where the stable says setosa: only its predictions differ.
    shifted = faulty_model(models / "shifted", FaultyEstimator(label=1), source="label")
    servers["shifted"] = Server(shifted, "iris")
    logs = tmp_path_factory.mktemp("canary-logs")
    started: list[Server] = []
    try:
        for name, server in servers.items():
            started.append(server.start(logs / f"{name}.log"))
        yield servers
    finally:
        for server in started:
            server.stop()


def kserve_pod(server: Server, isvc_name: str, app: str, revision: str | None = None) -> dict[str, Any]:
    """A target labelled as KServe labels a predictor pod of this InferenceService."""
    labels = {"app": app, "component": "predictor", "serving.kserve.io/inferenceservice": isvc_name}
    if revision:
        labels["serving.knative.dev/revision"] = revision
    return pod_target(server, NAMESPACE, labels)


def targets(stable: Server, canaries: dict[str, Server]) -> list[dict[str, Any]]:
    found = []
    for name in ("healthy", "failing", "slow", "shifted", "silent"):
        found.append(kserve_pod(stable, name, f"isvc.{name}-v1-predictor"))
        if name in canaries:  # "silent": a canary whose pods are never scraped
            found.append(kserve_pod(canaries[name], name, f"isvc.{name}-v2-predictor"))
    found.append(kserve_pod(stable, "kn", "kn-predictor-00001", revision="kn-predictor-00001"))
    found.append(kserve_pod(canaries["healthy"], "kn", "kn-predictor-00002", revision="kn-predictor-00002"))
    return found


@pytest.fixture(scope="module")
def prometheus(
    iris_server: Server, canaries: dict[str, Server], tmp_path_factory: pytest.TempPathFactory, chart: Any
) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prometheus-canary")
    static = targets(iris_server, canaries)
    with (
        ScrapingPrometheus(work, chart_service_monitor(chart), static) as scraping,
        TrafficDriver([iris_server, *canaries.values()]),
    ):
        up = 'up{job="servekit"} == 1'
        wait_until(lambda: len(query(scraping.url, up)) == len(static), 30, "every target scraped")
        for name in ("healthy", "failing", "slow", "shifted"):
            app = f"isvc.{name}-v2-predictor"
            scraping.wait_for_requests(f'app="{app}"')
        yield scraping.url


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


PREDICTION_SHIFT = {"name": "prediction-shift", "query": queries.PREDICTION_SHIFT, "max": 0.1}


def test_a_canary_predicting_like_the_stable_passes_the_prediction_shift_check(prometheus: str) -> None:
    memory = standard_canary("healthy")
    final = run_rollout(memory, prometheus, "healthy", analysis_with(metrics=[PREDICTION_SHIFT]))
    assert final.phase == Phase.SUCCEEDED, final.message
    checks = {check.name: check for check in final.analysis().checks}  # type: ignore[union-attr]
    assert checks["prediction-shift"].value == 0.0, checks["prediction-shift"]


def test_a_canary_whose_predictions_shifted_is_rolled_back(prometheus: str) -> None:
    """Every request answered, fast: only the predicted classes give it away."""
    memory = standard_canary("shifted")
    final = run_rollout(memory, prometheus, "shifted", analysis_with(metrics=[PREDICTION_SHIFT]))
    assert final.phase == Phase.FAILED
    checks = {check.name: check for check in final.analysis().checks}  # type: ignore[union-attr]
    assert checks["request-success-rate"].passed and checks["request-duration-p99"].passed, checks
    shift = checks["prediction-shift"]
    assert not shift.passed and shift.value == 1.0, shift
    assert memory.isvcs.get(NAMESPACE, "shifted")["spec"]["predictor"]["name"] == "v1"
