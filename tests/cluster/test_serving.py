"""The path a user takes, on the real node: the image built here (`make image`), `helm install`,
v2 calls to the InferenceService's host through KServe's Gateway, `helm test`, and the predictor
kept serving while pods are replaced or killed.

Every InferenceService here runs on the real node (its containers in containerd), with readiness
decided by the kubelet calling the predictor's own probes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import httpx
import numpy as np
import pytest
import yaml

from predictor.examples import sklearn_iris
from predictor.modeldir.artifacts import sha256_of
from tests.cluster.cluster import Cluster
from tests.cluster.real_node import NODE_NAME, NODE_SELECTOR, REPO_ROOT, TOLERATIONS
from tests.cluster.serving import (
    BASE_VALUES,
    READY_TIMEOUT,
    RELEASE,
    ROWS,
    SteadyTraffic,
    expected_answer,
    gateway,
    infer,
    install,
    isvc_host,
    on_real_node,
    outputs,
    predictor_pods,
    put_model,
    s3_values,
)
from tests.cluster.workload import PREDICTOR_CONTAINER, the_one
from tests.support.rendering import parse_documents


def test_helm_install_serves_what_the_model_says_through_the_gateway(
    cluster: Cluster,
    helm: helm_python.Config,
    chart: helm_python.Chart,
    namespace: str,
    real_node_images: None,
    tmp_path: Path,
) -> None:
    name = install(cluster, helm, chart, namespace, BASE_VALUES)
    (pod,) = predictor_pods(cluster, namespace, name)
    assert pod["spec"]["nodeName"] == NODE_NAME
    status = {s["name"]: s for s in pod["status"]["containerStatuses"]}[PREDICTOR_CONTAINER]
    assert status["ready"] and status["containerID"].startswith("containerd://"), status

    # The image's contract, inside the running container.
    exec_ = ["exec", "-n", namespace, pod["metadata"]["name"], "-c", PREDICTOR_CONTAINER, "--"]
    assert cluster.kubectl(*exec_, "id", "-u").stdout.strip() == "65532"
    denied = cluster.kubectl(*exec_, "touch", "/root-is-read-only", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr

    labels, probabilities = expected_answer(tmp_path, ROWS)
    answer = outputs(infer(gateway(cluster), isvc_host(cluster, namespace, name), ROWS))
    assert answer["label"]["data"] == labels
    np.testing.assert_allclose(
        np.array(answer["probabilities"]["data"]).reshape(-1, 3), probabilities, rtol=0, atol=1e-5
    )

    # Prometheus scrapes the pod as the chart's ServiceMonitor says, with KServe's pod labels.
    scraped = wait_for_series(cluster, f'servekit_requests_total{{namespace="{namespace}"}}')
    assert scraped["metric"]["app"] == f"isvc.{name}-predictor", scraped["metric"]
    assert scraped["metric"]["pod"] == pod["metadata"]["name"]

    # `helm test`: the chart's test pod, on the same node, calls the predictor's Service by name.
    result = helm.test(RELEASE, timeout=120, logs=True)
    # The test pod prints the predictor's reply, which has outputs, or exits non-zero.
    assert '"outputs"' in result["logs"], result["logs"]


def wait_for_series(cluster: Cluster, selector: str, timeout: float = 120) -> dict[str, Any]:
    """The first series the harness's Prometheus has for the selector, once it has one."""
    if cluster.prometheus_url is None:
        pytest.skip("no SERVEKIT_PROMETHEUS_URL: the cluster was not started by hack/controlplane.sh up")
    url = f"{cluster.prometheus_url}/api/v1/query"

    def found() -> dict[str, Any] | None:
        result = httpx.get(url, params={"query": selector}, timeout=10).json()["data"]["result"]
        return result[0] if result else None

    return cluster.wait_until(found, timeout, f"Prometheus to scrape {selector}", interval=2)


def test_a_rolling_upgrade_and_a_killed_predictor_fail_no_request(
    cluster: Cluster,
    helm: helm_python.Config,
    chart: helm_python.Chart,
    namespace: str,
    real_node_images: None,
) -> None:
    values = {**BASE_VALUES, "autoscaling": {"class": "none", "minReplicas": 2, "maxReplicas": 2}}
    values["predictor"] = {"deploymentStrategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}
    name = install(cluster, helm, chart, namespace, values)
    host = isvc_host(cluster, namespace, name)
    before = {p["metadata"]["name"] for p in predictor_pods(cluster, namespace, name)}
    assert len(before) == 2

    with SteadyTraffic(gateway(cluster), host) as traffic:
        traffic.wait_for(20)
        upgraded = {**values, "predictor": {**values["predictor"], "extraEnv": [{"name": "ROLLOUT", "value": "2"}]}}
        helm.upgrade(chart, RELEASE, on_real_node(upgraded))

        def rolled() -> set[str] | None:
            pods = predictor_pods(cluster, namespace, name)
            names = {p["metadata"]["name"] for p in pods}
            ready = all(c["ready"] for p in pods for c in p["status"].get("containerStatuses", []))
            return names if len(names) == 2 and not names & before and ready else None

        cluster.wait_until(rolled, READY_TIMEOUT, "helm upgrade to replace both predictor pods")
        traffic.wait_for(20)
    assert traffic.failures == [], (
        f"{len(traffic.failures)} of {traffic.sent} failed during the upgrade: {traffic.failures[:5]}"
    )

    victim = predictor_pods(cluster, namespace, name)[0]
    with SteadyTraffic(gateway(cluster), host) as traffic:
        traffic.wait_for(20)
        kill_container_process(victim, PREDICTOR_CONTAINER)

        def restarted() -> bool | None:
            pod = cluster.get("pod", victim["metadata"]["name"], namespace)
            status = {s["name"]: s for s in (pod or {}).get("status", {}).get("containerStatuses", [])}
            container = status.get(PREDICTOR_CONTAINER, {})
            return (container.get("restartCount", 0) >= 1 and container.get("ready")) or None

        cluster.wait_until(restarted, READY_TIMEOUT, "the kubelet to restart the killed predictor")
        traffic.wait_for(20)
    assert traffic.failed_share <= 0.01, f"{len(traffic.failures)} of {traffic.sent} failed: {traffic.failures[:5]}"


def kill_container_process(pod: dict[str, Any], container: str) -> None:
    """SIGKILL the container's main process from the host, found through containerd (a process
    cannot SIGKILL its own pid namespace's init from inside)."""
    status = {s["name"]: s for s in pod["status"]["containerStatuses"]}[container]
    container_id = status["containerID"].removeprefix("containerd://")
    cgroup_files = subprocess.run(
        ["grep", "-l", container_id, *(str(p) for p in Path("/proc").glob("[0-9]*/cgroup"))],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    pids = sorted(int(Path(f).parent.name) for f in cgroup_files)
    assert pids, f"no process of container {container_id} on this machine"
    subprocess.run(["kill", "-KILL", str(pids[0])], check=True)


def test_a_model_from_s3_is_downloaded_by_kserves_storage_initializer_and_served(
    cluster: Cluster,
    helm: helm_python.Config,
    chart: helm_python.Chart,
    namespace: str,
    real_node_images: None,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "iris"
    sklearn_iris.build(folder)
    uri = f"s3://models-{namespace}/iris/v1"
    put_model(cluster, folder, uri)
    name = install(cluster, helm, chart, namespace, s3_values(cluster, namespace, uri))
    (pod,) = predictor_pods(cluster, namespace, name)
    (initializer,) = pod["status"]["initContainerStatuses"]
    assert initializer["name"] == "storage-initializer"
    assert initializer["state"]["terminated"]["exitCode"] == 0
    labels, _ = expected_answer(tmp_path, ROWS)
    answer = outputs(infer(gateway(cluster), isvc_host(cluster, namespace, name), ROWS))
    assert answer["label"]["data"] == labels


def test_a_wrong_sha256_in_storage_keeps_the_predictor_from_ready_naming_the_hash(
    cluster: Cluster,
    helm: helm_python.Config,
    chart: helm_python.Chart,
    namespace: str,
    real_node_images: None,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "iris"
    sklearn_iris.build(folder)
    manifest = (folder / "model.yaml").read_text()
    actual = sha256_of(folder / "model.joblib")
    wrong = "ab" * 32  # a well-formed sha256 of nothing this artifact is
    (folder / "model.yaml").write_text(manifest.replace(actual, wrong))
    uri = f"s3://models-{namespace}/iris/tampered"
    put_model(cluster, folder, uri)
    rendered = parse_documents(
        helm.install(chart, RELEASE, on_real_node(s3_values(cluster, namespace, uri)))["manifest"]
    )
    name = the_one(rendered, "InferenceService")["metadata"]["name"]

    def crashed() -> dict[str, Any] | None:
        for pod in predictor_pods(cluster, namespace, name):
            for status in pod.get("status", {}).get("containerStatuses", []):
                if status["name"] == PREDICTOR_CONTAINER and status.get("restartCount", 0) >= 1:
                    return pod
        return None

    pod = cluster.wait_until(crashed, READY_TIMEOUT, "the predictor to exit on the tampered artifact")
    logs = cluster.kubectl(
        "logs", "-n", namespace, pod["metadata"]["name"], "-c", PREDICTOR_CONTAINER, "--previous"
    ).stdout
    assert actual in logs and wrong in logs, logs[-3000:]
    isvc = cluster.get("inferenceservice", name, namespace)
    assert isvc is not None
    ready = {c["type"]: c["status"] for c in isvc.get("status", {}).get("conditions", [])}.get("Ready")
    assert ready != "True", isvc.get("status")


@pytest.mark.parametrize("overlay", ["base", "overlays/standard-hpa"])
def test_a_standard_overlay_serves_through_the_gateway(
    cluster: Cluster, namespace: str, real_node_images: None, tmp_path: Path, overlay: str
) -> None:
    """`kubectl apply -k` of the overlay as a user would, with the image built here and the
    predictor put on the real node by a kustomization of the user's own on top."""
    source = REPO_ROOT / "manifests" / overlay
    placement = {
        "nodeSelector": NODE_SELECTOR,
        "tolerations": TOLERATIONS,
    }
    patch = [{"op": "add", "path": f"/spec/predictor/{key}", "value": value} for key, value in placement.items()]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize takes only relative paths; the overlay lies outside this folder, hence the flag below.
        "resources": [os.path.relpath(source, tmp_path)],
        "images": [{"name": "servekit/predictor", "newTag": "dev"}],
        "patches": [
            {"target": {"group": "serving.kserve.io", "kind": "InferenceService"}, "patch": yaml.safe_dump(patch)}
        ],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    built = cluster.kubectl("kustomize", "--load-restrictor=LoadRestrictionsNone", str(tmp_path)).stdout
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=built)
    cluster.wait_for_isvc(namespace, "iris", timeout=READY_TIMEOUT)
    labels, _ = expected_answer(tmp_path, ROWS)
    answer = outputs(infer(gateway(cluster), isvc_host(cluster, namespace, "iris"), ROWS))
    assert answer["label"]["data"] == labels
