"""The real node: the kubelet registers it, containerd runs real containers from the image built
here, the pod network stays on this machine, and kubectl's logs, exec and port-forward reach the
containers through the API server and the kubelet."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.cluster import Cluster
from tests.cluster.real_node import (
    NODE_LABEL_KEY,
    NODE_LABEL_VALUE,
    NODE_NAME,
    POD_GATEWAY_IP,
    POD_NETWORK,
    PREDICTOR_IMAGE,
    SERVICE_NETWORK,
    on_real_node,
    restricted_container,
)

POD = "predictor"


def predictor_pod() -> dict[str, Any]:
    container = restricted_container(
        "predictor",
        PREDICTOR_IMAGE,
        ports=[{"containerPort": 8080, "name": "http"}],
        readinessProbe={"httpGet": {"path": "/v2/models/iris/ready", "port": 8080}, "periodSeconds": 1},
        volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}],
    )
    spec = {
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": 2,
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD}, "spec": on_real_node(spec)}


@pytest.fixture
def running_pod(cluster: Cluster, real_node_images: None, namespace: str) -> Iterator[dict[str, Any]]:
    cluster.apply([predictor_pod()], namespace)
    cluster.kubectl("wait", "-n", namespace, f"pod/{POD}", "--for=condition=Ready", "--timeout=120s", timeout=130)
    pod = cluster.get("pod", POD, namespace)
    assert pod is not None
    yield pod
    cluster.kubectl("delete", "-n", namespace, f"pod/{POD}", "--wait=false", check=False)


def exec_in(cluster: Cluster, namespace: str, *command: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("exec", "-n", namespace, POD, "--", *command, check=False, timeout=60)


def test_the_real_node_registers_ready_tainted_and_labelled(cluster: Cluster) -> None:
    node = cluster.get("node", NODE_NAME)
    assert node is not None, f"no node {NODE_NAME}: hack/controlplane.sh up starts it"
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True", conditions
    assert node["metadata"]["labels"][NODE_LABEL_KEY] == NODE_LABEL_VALUE
    assert {"key": NODE_LABEL_KEY, "value": NODE_LABEL_VALUE, "effect": "NoSchedule"} in node["spec"]["taints"]
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == cluster.versions["KUBERNETES_VERSION"]
    assert info["containerRuntimeVersion"].startswith("containerd://1.")
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == str(POD_GATEWAY_IP)


def test_a_pod_runs_a_real_container_as_the_image_says(
    cluster: Cluster, namespace: str, running_pod: dict[str, Any]
) -> None:
    assert running_pod["spec"]["nodeName"] == NODE_NAME
    assert ipaddress.ip_address(running_pod["status"]["podIP"]) in POD_NETWORK
    status = running_pod["status"]["containerStatuses"][0]
    assert status["containerID"].startswith("containerd://"), status
    assert status["ready"] is True
    # The image's user, not root, with the root filesystem read-only and /tmp writable.
    assert exec_in(cluster, namespace, "id", "-u").stdout.strip() == "65532"
    denied = exec_in(cluster, namespace, "touch", "/written-to-root")
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr, denied
    assert exec_in(cluster, namespace, "touch", "/tmp/written").returncode == 0


def test_logs_and_port_forward_reach_the_container(
    cluster: Cluster, namespace: str, running_pod: dict[str, Any]
) -> None:
    logs = cluster.kubectl("logs", "-n", namespace, POD).stdout
    assert "iris" in logs, logs[-2000:]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        "kubectl",
        f"--kubeconfig={cluster.kubeconfig}",
        "port-forward",
        "-n",
        namespace,
        f"pod/{POD}",
        f"{port}:8080",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as forward:
        try:
            assert forward.stdout is not None
            # kubectl prints "Forwarding from 127.0.0.1:PORT -> 8080" once it listens.
            assert "Forwarding from" in forward.stdout.readline()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/iris", timeout=30) as response:
                metadata = json.load(response)
            assert metadata["name"] == "iris"
        finally:
            forward.terminate()
            forward.communicate(timeout=10)


def test_the_host_reaches_the_pod_at_its_address(running_pod: dict[str, Any]) -> None:
    address = running_pod["status"]["podIP"]
    # The first iris flower of the training set: setosa, class 0.
    body = json.dumps(
        {"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
    )
    request = urllib.request.Request(
        f"http://{address}:8080/v2/models/iris/infer", body.encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    assert answer["model_name"] == "iris"
    outputs = {output["name"]: output for output in answer["outputs"]}
    assert outputs["label"]["data"] == [0], outputs


def test_a_pod_has_no_route_off_the_machine(cluster: Cluster, namespace: str, running_pod: dict[str, Any]) -> None:
    """Read from the pod's routing table, so nothing is sent: only the pod network and the Service
    range are routed, there is no default route."""
    table = exec_in(cluster, namespace, "cat", "/proc/net/route").stdout.splitlines()[1:]
    routes = set()
    for line in table:
        fields = line.split()
        destination = ipaddress.ip_address(int(fields[1], 16).to_bytes(4, "little"))
        mask = ipaddress.ip_address(int(fields[7], 16).to_bytes(4, "little"))
        routes.add(ipaddress.ip_network(f"{destination}/{mask}"))
    assert routes == {POD_NETWORK, SERVICE_NETWORK}, routes
