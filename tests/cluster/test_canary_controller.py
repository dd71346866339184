"""`servekit-canary controller` (kopf) as a real process against the API server, with KServe's
controller reacting and real metrics (tests/cluster/scraped_pods.py):

- the CanaryAnalysis CRD from the chart's file: accepted by the real API server as structural,
  status subresource, printer columns in `kubectl get skcanary`;
- the controller runs here with a kubeconfig made from the token of the ServiceAccount that the
  chart (or manifests/canary-controller) installs, so it has exactly their RBAC: a missing verb
  fails the test;
- a canary started GitOps-style (`kubectl apply` of the InferenceService) is taken to promotion,
  through a controller killed and started again in the middle; a failing one is rolled back;
  each decision is an Event on the InferenceService;
- no finalizer: the CanaryAnalysis goes when deleted, with no controller running.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helm_python

from tests.cluster.canary_checks import check_promoted, check_rolled_back, uid_of
from tests.cluster.canary_tool import (
    V2_URI,
    ControllerProcess,
    canary_cli,
    history_actions,
    manifests_rbac,
    ok,
    start_stable,
    token_kubeconfig,
    wait_canary_ready,
)
from tests.cluster.cluster import Cluster
from tests.cluster.scraped_pods import ScrapedPods
from tests.support.rendering import CHART_DIR, MANIFESTS_DIR, ci_values, parse_documents

RELEASE = "canary"
CHART_ISVC = f"{RELEASE}-servekit"
ANALYSIS = {
    "steps": [20, 50], "interval": "3s", "window": "10s", "threshold": 2, "minRequests": 10, "maxP99Ms": 200,
    "progressDeadline": "60s",
}  # fmt: skip
OUTCOME_SECONDS = 90


def analysis_status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    found = cluster.get("canaryanalysis", name, namespace)
    assert found is not None, f"no CanaryAnalysis {namespace}/{name}"
    return dict(found.get("status") or {})


def wait_phase(
    cluster: Cluster, namespace: str, name: str, phase: str, controller: ControllerProcess, **fields: Any
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        status = analysis_status(cluster, namespace, name)
        wanted = status.get("phase") == phase and all(status.get(k) == v for k, v in fields.items())
        return status if wanted else None

    try:
        return cluster.wait_until(reached, OUTCOME_SECONDS, f"CanaryAnalysis {name} to be {phase} {fields}")
    except AssertionError as error:
        status = analysis_status(cluster, namespace, name)
        raise AssertionError(f"{error}\nstatus: {status}\ncontroller log:\n{controller.tail()}") from None


def isvc_events(cluster: Cluster, namespace: str, isvc: str) -> list[dict[str, Any]]:
    selector = f"involvedObject.kind=InferenceService,involvedObject.name={isvc}"
    listed = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", selector, "-o", "json").stdout
    events = [e for e in json.loads(listed)["items"] if e.get("source", {}).get("component") == "servekit-canary"]
    return sorted(events, key=lambda e: e["metadata"]["creationTimestamp"])


def chart_values(prometheus_url: str, canary: bool) -> dict[str, Any]:
    values = ci_values(CHART_DIR / "ci" / "standard-canary-values.yaml")
    values["canary"]["standard"]["enabled"] = canary
    values["canaryAnalysis"]["spec"] = {**ANALYSIS, "prometheusUrl": prometheus_url}
    values["canaryController"]["prometheusUrl"] = prometheus_url
    return values


def check_crd(cluster: Cluster, crd: dict[str, Any], namespace: str, name: str) -> None:
    """The real API server took the schema as structural; kubectl shows the printer columns."""
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions.get("NamesAccepted") == "True" and "NonStructuralSchema" not in conditions, conditions
    (version,) = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    table = cluster.kubectl("get", "skcanary", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "INFERENCESERVICE", "PHASE", "WEIGHT", "FAILED", "AGE"], table
    assert table[1].split()[:5] == [name, CHART_ISVC, "Succeeded", "50", "0"], table
    wide = cluster.kubectl("get", "skcanary", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:7] == ["NAME", "INFERENCESERVICE", "PHASE", "WEIGHT", "FAILED", "PROMOTED", "MESSAGE"]
    assert wide[1].split()[5] == "True", wide


def test_chart_controller_promotes_a_gitops_canary_through_a_restart(
    cluster: Cluster,
    canary_crd: dict[str, Any],
    helm: helm_python.Config,
    chart: helm_python.Chart,
    namespace: str,
    scraped: ScrapedPods,
    controllers: list[ControllerProcess],
    tmp_path: Path,
) -> None:
    helm.install(chart, RELEASE, chart_values(scraped.url, canary=False))
    cluster.wait_for_isvc(namespace, CHART_ISVC)
    account = f"{RELEASE}-servekit-canary-controller"
    kubeconfig = token_kubeconfig(cluster, namespace, account, tmp_path / "controller.kubeconfig")
    flags = ("--selector", f"app.kubernetes.io/instance={RELEASE}")

    def controller() -> ControllerProcess:
        controllers.append(ControllerProcess(kubeconfig, namespace, tmp_path / "controller.log", *flags).start())
        return controllers[-1]

    idle = controller()
    wait_phase(cluster, namespace, CHART_ISVC, "Idle", idle)
    idle.stop()  # off while the canary's pods come up and get scraped: the analysis starts with series

    # GitOps: the InferenceService with its canary, rendered and applied as a sync would.
    rendered = chart.render(chart_values(scraped.url, canary=True), name=RELEASE, namespace=namespace)
    documents = [d for name, text in rendered.items() if name.endswith(".yaml") for d in parse_documents(text)]
    (isvc,) = [d for d in documents if d["kind"] == "InferenceService"]
    cluster.apply([isvc], namespace)
    wait_canary_ready(cluster, namespace, CHART_ISVC, "v2", isvc["spec"]["canary"][0]["trafficPercent"])
    scraped.scrape(cluster, namespace, CHART_ISVC, {"v1": "healthy", "v2": "healthy"})
    first = controller()
    middle = wait_phase(cluster, namespace, CHART_ISVC, "Progressing", first, canaryWeight=20)
    assert middle["begun"] is True and middle["step"] == 0

    first.kill()
    second = controller()
    canary_uid = uid_of(cluster, "deployment", f"{CHART_ISVC}-v2-predictor", namespace)
    final = wait_phase(cluster, namespace, CHART_ISVC, "Succeeded", second, finished=True)
    assert final["startedAt"] == middle["startedAt"], "the second controller resumed the same rollout"
    assert final["canaryWeight"] == 50 and final["failedChecks"] == 0
    check_promoted(cluster, namespace, CHART_ISVC, "v2", canary_uid)
    assert history_actions(cluster, namespace, CHART_ISVC) == ["baseline", "set-weight", "set-weight", "promote"]
    reasons = [(e["reason"], e["type"]) for e in isvc_events(cluster, namespace, CHART_ISVC)]
    assert reasons == [("Started", "Normal"), ("Advanced", "Normal"), ("Promoted", "Normal")], reasons
    check_crd(cluster, canary_crd, namespace, CHART_ISVC)

    second.stop()
    assert "finalizers" not in cluster.get("canaryanalysis", CHART_ISVC, namespace)["metadata"]  # type: ignore[index]
    cluster.kubectl("delete", "canaryanalysis", CHART_ISVC, "-n", namespace, "--timeout=20s")


def example_analysis(prometheus_url: str) -> dict[str, Any]:
    """manifests/canary-controller's example CanaryAnalysis, short, without its notifier hook."""
    (analysis,) = parse_documents((MANIFESTS_DIR / "canary-controller" / "canaryanalysis-example.yaml").read_text())
    analysis["spec"] = {**analysis["spec"], **ANALYSIS, "prometheusUrl": prometheus_url}
    del analysis["spec"]["webhooks"]
    return dict(analysis)


def test_manifests_controller_rolls_back_a_failing_canary(
    cluster: Cluster,
    canary_crd: dict[str, Any],
    namespace: str,
    scraped: ScrapedPods,
    controllers: list[ControllerProcess],
    tmp_path: Path,
) -> None:
    cluster.apply(manifests_rbac(namespace), namespace)
    start_stable(cluster, namespace, "iris")
    cluster.apply([example_analysis(scraped.url)], namespace)
    kubeconfig = token_kubeconfig(cluster, namespace, "servekit-canary-controller", tmp_path / "sa.kubeconfig")

    def controller() -> ControllerProcess:
        controllers.append(ControllerProcess(kubeconfig, namespace, tmp_path / "controller.log").start())
        return controllers[-1]

    idle = controller()
    wait_phase(cluster, namespace, "iris", "Idle", idle)
    idle.stop()  # off while the canary's pods come up and get scraped: the analysis starts with series

    ok(canary_cli(cluster, namespace, "start", "iris", "--name", "v2", "--storage-uri", V2_URI))
    wait_canary_ready(cluster, namespace, "iris", "v2", 0)
    scraped.scrape(cluster, namespace, "iris", {"v1": "healthy", "v2": "failing"})
    final = wait_phase(cluster, namespace, "iris", "Failed", controller(), finished=True)
    assert "request-success-rate: 0.00% (min 99%)" in final["message"] and final["failedChecks"] == 2
    assert final["conditions"][0]["type"] == "Promoted" and final["conditions"][0]["status"] == "False"
    check_rolled_back(cluster, namespace, "iris", "v1")
    reasons = [(e["reason"], e["type"]) for e in isvc_events(cluster, namespace, "iris")]
    assert reasons == [("Started", "Normal"), ("AnalysisFailed", "Warning"), ("RolledBack", "Warning")], reasons
    described = cluster.kubectl("describe", "inferenceservice", "iris", "-n", namespace).stdout
    assert "RolledBack" in described and "servekit-canary" in described
