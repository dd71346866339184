"""`servekit-canary` as the cluster tests run it: a real process with a kubeconfig, on
InferenceServices from our overlays, and what it left on the cluster (the history ConfigMap).
Also kubeconfigs for a ServiceAccount's token, so the controller runs with exactly the RBAC the
chart or manifests/canary-controller grant."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.cluster import Cluster
from tests.support.rendering import MANIFESTS_DIR, kustomize_build
from tests.support.server import free_port

STANDARD_OVERLAY = MANIFESTS_DIR / "overlays" / "standard-canary"
KNATIVE_OVERLAY = MANIFESTS_DIR / "overlays" / "knative-canary"
V2_URI = "s3://servekit-models/iris/v2"
CLI_TIMEOUT = 60


def servekit_canary() -> str:
    """The console script installed next to this interpreter."""
    script = Path(sys.executable).parent / "servekit-canary"
    assert script.exists(), f"no {script}: `pip install -e .` installs the servekit-canary console script"
    return str(script)


def canary_cli(
    cluster: Cluster, namespace: str, *args: str, kubeconfig: Path | None = None, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """`servekit-canary ARGS -n NAMESPACE --kubeconfig ...` as a process; never raises on its exit code."""
    command = [servekit_canary(), *args, "-n", namespace, "--kubeconfig", str(kubeconfig or cluster.kubeconfig)]
    env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=env)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{' '.join(result.args)} exited {result.returncode}:\n{result.stderr}"
    return result


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result).stdout)


def overlay_isvc(overlay: Path) -> dict[str, Any]:
    (isvc,) = [obj for obj in kustomize_build(overlay) if obj["kind"] == "InferenceService"]
    return copy.deepcopy(isvc)


def stable_objects(overlay: Path = STANDARD_OVERLAY) -> list[dict[str, Any]]:
    """An overlay's objects with no canary in its InferenceService: what a canary starts from."""
    objects = kustomize_build(overlay)
    for obj in objects:
        if obj["kind"] == "InferenceService":
            obj["spec"].pop("canary", None)
            obj["spec"]["predictor"].pop("canaryTrafficPercent", None)
    return objects


def start_stable(cluster: Cluster, namespace: str, isvc: str) -> dict[str, Any]:
    """The Standard-mode overlay without its canary, Ready."""
    cluster.apply(stable_objects(), namespace)
    return cluster.wait_for_isvc(namespace, isvc)


def wait_canary_ready(cluster: Cluster, namespace: str, isvc: str, canary: str, weight: int) -> dict[str, Any]:
    """KServe runs the canary's Deployment and reports it ready at this weight."""

    def reported(found: dict[str, Any], deployments: dict[str, Any]) -> bool:
        statuses = found["status"].get("canaryStatuses") or []
        return [(s["name"], s.get("ready"), s.get("trafficPercent")) for s in statuses] == [(canary, True, weight)]

    found = cluster.wait_for_isvc(namespace, isvc, caught_up=reported)
    assert f"{isvc}-{canary}-predictor" in cluster.names("deployments", namespace)
    return found


def history_config_map(cluster: Cluster, namespace: str, isvc: str) -> dict[str, Any]:
    found = cluster.get("configmap", f"{isvc}-canary-history", namespace)
    assert found is not None, f"no ConfigMap {isvc}-canary-history in {namespace}"
    return found


def history_actions(cluster: Cluster, namespace: str, isvc: str) -> list[str]:
    entries = json.loads(history_config_map(cluster, namespace, isvc)["data"]["history.json"])
    return [entry["action"] for entry in entries]


def spec_generation(cluster: Cluster, namespace: str, isvc: str) -> int:
    """The InferenceService's generation: it moves with every change of the spec, and not with
    KServe's status writes."""
    found = cluster.get("inferenceservice", isvc, namespace)
    assert found is not None, f"no InferenceService {namespace}/{isvc}"
    return int(found["metadata"]["generation"])


def token_kubeconfig(cluster: Cluster, namespace: str, service_account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount (`kubectl create token`), nothing more."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    (entry,) = admin["clusters"]
    token = cluster.kubectl("create", "token", service_account, "-n", namespace, "--duration=1h").stdout.strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "controlplane", "cluster": entry["cluster"]}],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [
            {"name": "sa", "context": {"cluster": "controlplane", "user": service_account, "namespace": namespace}}
        ],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def manifests_rbac(namespace: str) -> list[dict[str, Any]]:
    """manifests/canary-controller's ServiceAccount, Role and RoleBinding, moved to this namespace
    as `kustomize edit set namespace` would."""
    objects = []
    for obj in kustomize_build(MANIFESTS_DIR / "canary-controller"):
        if obj["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
            obj = copy.deepcopy(obj)
            obj["metadata"]["namespace"] = namespace
            for subject in obj.get("subjects", []):
                subject["namespace"] = namespace
            objects.append(obj)
    assert [o["kind"] for o in objects] == ["ServiceAccount", "Role", "RoleBinding"], objects
    return objects


class ControllerProcess:
    """`servekit-canary controller` as a process on this machine, with its log in a file."""

    def __init__(self, kubeconfig: Path, namespace: str, log: Path, *flags: str) -> None:
        self.command = [
            servekit_canary(), "controller", "--kubeconfig", str(kubeconfig), "-n", namespace, "--tick", "1",
            f"--liveness=http://127.0.0.1:{free_port()}/healthz", *flags,
        ]  # fmt: skip
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ControllerProcess:
        env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to write anything on the way out, as when a node dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:]) if self.log.exists() else ""
