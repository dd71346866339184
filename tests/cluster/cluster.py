"""A running cluster as the cluster tests see it: kubectl bound to its kubeconfig, reads of objects,
and waits for what controllers do (KServe reconciling an InferenceService, Deployments rolling out).

Everything goes through the real kubectl, so what a test does is what a user would type."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

# KServe's labels on what it makes for an InferenceService (Standard mode).
ISVC_LABEL = "serving.kserve.io/inferenceservice"
PREDICTOR_SELECTOR = "component=predictor"


class KubectlError(AssertionError):
    """kubectl exited non-zero; the message has the command and its stderr."""

    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr.strip()}")
        self.stderr = result.stderr


@dataclass
class Cluster:
    """A cluster reachable through `kubeconfig`; `versions` are hack/versions.env's pins."""

    kubeconfig: Path
    versions: dict[str, str] = field(default_factory=dict)
    # The `export NAME=VALUE` lines `hack/controlplane.sh up` printed (empty for SERVEKIT_KUBECONFIG).
    exports: dict[str, str] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str | None:
        """KServe's Gateway (its port-80 listener) as the harness serves it, e.g. http://127.0.0.1:PORT."""
        return self.exports.get("SERVEKIT_GATEWAY_URL")

    @property
    def s3_url(self) -> str | None:
        """The harness's object store (S3 API), e.g. http://127.0.0.1:PORT."""
        return self.exports.get("SERVEKIT_S3_URL")

    @property
    def prometheus_url(self) -> str | None:
        """The harness's Prometheus, scraping the real node's pods as the cluster's ServiceMonitors say."""
        return self.exports.get("SERVEKIT_PROMETHEUS_URL")

    @property
    def dns_server(self) -> str | None:
        """The harness's CoreDNS (zone cluster.local) as HOST:PORT."""
        return self.exports.get("SERVEKIT_DNS_SERVER")

    @property
    def kserve_version(self) -> str:
        """The KServe release whose controller and webhooks run (e.g. "v0.20.0")."""
        return self.versions["KSERVE_VERSION"]

    # --- kubectl --------------------------------------------------------------------------------

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """`kubectl ARGS` against this cluster; raises KubectlError on a non-zero exit when check."""
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise AssertionError("kubectl is not on PATH")
        command = [kubectl, f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise KubectlError(list(args), result)
        return result

    def apply(self, objects: Iterable[dict[str, Any]], namespace: str, *extra: str) -> str:
        """`kubectl apply -f -` of the objects into namespace; returns kubectl's output."""
        documents = yaml.safe_dump_all(list(objects), sort_keys=False)
        return self.kubectl("apply", "-n", namespace, "-f", "-", *extra, stdin=documents).stdout

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object as the API server has it, or None when there is none."""
        args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
        result = self.kubectl(*args, check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise KubectlError(args, result)
        found: dict[str, Any] = json.loads(result.stdout)
        return found

    def list(self, kind: str, namespace: str | None, selector: str | None = None) -> list[dict[str, Any]]:
        """Every object of a kind in namespace (None: cluster-scoped kinds), optionally by label selector."""
        args = ["get", kind, "-o", "json"] + (["-n", namespace] if namespace else [])
        args += ["-l", selector] if selector else []
        items: list[dict[str, Any]] = json.loads(self.kubectl(*args).stdout)["items"]
        return items

    def names(self, kind: str, namespace: str, selector: str | None = None) -> list[str]:
        return sorted(item["metadata"]["name"] for item in self.list(kind, namespace, selector))

    # --- waits ----------------------------------------------------------------------------------

    @staticmethod
    def wait_until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
        """Poll check() until it returns something truthy, and return that; fail after timeout
        seconds, naming what was awaited and the last value seen."""
        deadline = time.monotonic() + timeout
        last: T | None = None
        while True:
            last = check()
            if last:
                return last
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last seen: {last!r})")
            time.sleep(interval)

    def wait_for_isvc(
        self,
        namespace: str,
        name: str,
        timeout: float = 90,
        caught_up: Callable[[dict[str, Any], dict[str, dict[str, Any]]], bool] | None = None,
    ) -> dict[str, Any]:
        """The InferenceService once KServe has caught up with its last change: Ready (and
        CanaryPredictorReady with canaries) True, exactly the predictor Deployments the spec asks
        for, each rolled out, and `caught_up(isvc, deployments by name)` true if given (e.g. the
        Deployments carry the last change). A Standard-mode InferenceService stays Ready during a
        rolling update, and KServe's status.observedGeneration is its Deployment's, not the
        InferenceService's generation: neither says the last change was reconciled."""

        def settled() -> dict[str, Any] | None:
            isvc = self.get("inferenceservice", name, namespace)
            if isvc is None or not isvc_ready(isvc):
                return None
            deployments = {d["metadata"]["name"]: d for d in self.isvc_deployments(namespace, name)}
            if set(deployments) != set(expected_deployments(isvc)):
                return None
            if not all(deployment_rolled_out(d) for d in deployments.values()):
                return None
            return isvc if caught_up is None or caught_up(isvc, deployments) else None

        try:
            return self.wait_until(settled, timeout, f"InferenceService {namespace}/{name} to be Ready")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.describe_isvc(namespace, name)}") from None

    def isvc_deployments(self, namespace: str, isvc: str) -> list[dict[str, Any]]:
        """The predictor Deployments KServe runs for an InferenceService (stable and canaries)."""
        return self.list("deployments", namespace, f"{ISVC_LABEL}={isvc},{PREDICTOR_SELECTOR}")

    def describe_isvc(self, namespace: str, name: str) -> str:
        """What a person needs to see when an InferenceService does not become Ready."""
        isvc = self.get("inferenceservice", name, namespace) or {}
        pods = self.kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
        events = self.kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False).stdout
        status = yaml.safe_dump(isvc.get("status", {}), sort_keys=False)
        return f"--- status of {namespace}/{name}:\n{status}--- pods:\n{pods}--- events:\n{events[-3000:]}"


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The status condition of that type, or None."""
    for item in obj.get("status", {}).get("conditions", []):
        if item.get("type") == kind:
            return dict(item)
    return None


def condition_true(obj: dict[str, Any], kind: str) -> bool:
    found = condition(obj, kind)
    return found is not None and found.get("status") == "True"


def isvc_ready(isvc: dict[str, Any]) -> bool:
    if not condition_true(isvc, "Ready"):
        return False
    return not isvc["spec"].get("canary") or condition_true(isvc, "CanaryPredictorReady")


def expected_deployments(isvc: dict[str, Any]) -> list[str]:
    """Deployment names KServe (Standard mode) runs: `<isvc>-predictor`, or
    `<isvc>-<name>-predictor` when spec.predictor.name is set, and one per spec.canary[] entry."""
    name = isvc["metadata"]["name"]
    stable = isvc["spec"]["predictor"].get("name")
    names = [f"{name}-{stable}-predictor" if stable else f"{name}-predictor"]
    names += [f"{name}-{entry['predictor']['name']}-predictor" for entry in isvc["spec"].get("canary", [])]
    return names


def deployment_rolled_out(deployment: dict[str, Any]) -> bool:
    spec, status = deployment["spec"], deployment.get("status", {})
    replicas = spec.get("replicas", 1)
    return (
        status.get("observedGeneration") == deployment["metadata"].get("generation")
        and status.get("updatedReplicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
    )
