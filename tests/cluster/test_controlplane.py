"""The control plane itself: what hack/controlplane.sh promises the other cluster tests."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.cluster.cluster import Cluster, KubectlError

# Allowed by the "baseline" standard, not by "restricted" (no seccomp profile, may run as root).
UNRESTRICTED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "plain"},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}


def test_api_server_reports_the_pinned_kubernetes(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == cluster.versions["KUBERNETES_VERSION"]


def test_simulated_nodes_are_ready_one_with_a_tainted_gpu(cluster: Cluster) -> None:
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    ready = {
        node["metadata"]["name"]
        for node in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
    }
    assert len(ready) == len(nodes) >= 3
    gpu_nodes = [node for node in nodes if "nvidia.com/gpu" in node["status"]["allocatable"]]
    assert len(gpu_nodes) == 1
    (gpu,) = gpu_nodes
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in gpu["spec"]["taints"]


def test_pod_security_admission_enforces_restricted(cluster: Cluster, namespace: str) -> None:
    with pytest.raises(KubectlError) as refused:
        cluster.apply([UNRESTRICTED_POD], namespace)
    assert 'violates PodSecurity "restricted:latest"' in refused.value.stderr


@pytest.mark.parametrize(
    "crd",
    [
        "inferenceservices.serving.kserve.io",
        "httproutes.gateway.networking.k8s.io",
        "scaledobjects.keda.sh",
        "servicemonitors.monitoring.coreos.com",
        "podmonitors.monitoring.coreos.com",
        "services.serving.knative.dev",
    ],
)
def test_every_kind_the_chart_can_render_is_known(cluster: Cluster, crd: str) -> None:
    found = cluster.get("crd", crd)
    assert found is not None, f"CRD {crd} is not installed"
    assert any(c["type"] == "Established" and c["status"] == "True" for c in found["status"]["conditions"])


def test_kserve_runs_standard_mode_with_gateway_api(cluster: Cluster) -> None:
    config = cluster.get("configmap", "inferenceservice-config", "kserve")
    assert config is not None
    assert json.loads(config["data"]["deploy"])["defaultDeploymentMode"] == "Standard"
    assert '"enableGatewayApi": true' in config["data"]["ingress"]
    gateway = cluster.get("gateway", "kserve-ingress-gateway", "kserve")
    assert gateway is not None
    programmed = [c for c in gateway["status"]["conditions"] if c["type"] == "Programmed"]
    assert programmed and programmed[0]["status"] == "True", gateway["status"]
    assert gateway["status"].get("addresses"), "the Gateway has no address"


def test_kserve_webhook_defaults_what_the_api_server_stores(cluster: Cluster, namespace: str) -> None:
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "defaulted"},
        "spec": {"predictor": {"containers": [{"name": "kserve-container", "image": "servekit/predictor:probe"}]}},
    }
    created = yaml.safe_load(cluster.apply([isvc], namespace, "--dry-run=server", "-o", "yaml"))
    container = created["spec"]["predictor"]["containers"][0]
    # KServe's defaulter fills in the resources from inferenceservice-config.
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
