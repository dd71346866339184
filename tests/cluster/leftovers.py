"""What is left in a namespace after an uninstall: every object of the kinds a release or KServe
makes, less what every namespace has."""

from __future__ import annotations

import time
from typing import Any

from tests.cluster.cluster import Cluster

KINDS = (
    "inferenceservices,deployments,replicasets,pods,services,horizontalpodautoscalers,scaledobjects,httproutes,"
    "poddisruptionbudgets,networkpolicies,servicemonitors,serviceaccounts,configmaps,secrets,cronjobs,jobs"
)
# Made by Kubernetes in every namespace.
EVERY_NAMESPACE = {"serviceaccount/default", "configmap/kube-root-ca.crt"}
# KServe releases that make a canary's HorizontalPodAutoscaler without an owner reference (the
# canary path of components/predictor.go sets one on the canary's Deployment and Service only), so
# it outlives the canary and the InferenceService.
CANARY_HPA_WITHOUT_OWNER = {"v0.20.0"}


def kserve_orphans(isvc: dict[str, Any], kserve_version: str) -> set[str]:
    """What this KServe release leaves behind of an InferenceService once it is deleted."""
    class_ = isvc["metadata"].get("annotations", {}).get("serving.kserve.io/autoscalerClass", "hpa")
    if kserve_version not in CANARY_HPA_WITHOUT_OWNER or class_ != "hpa":
        return set()
    name = isvc["metadata"]["name"]
    return {
        f"horizontalpodautoscaler.autoscaling/{name}-{entry['predictor']['name']}-predictor"
        for entry in isvc["spec"].get("canary", [])
    }


def namespace_leftovers(cluster: Cluster, namespace: str, keep: set[str]) -> list[str]:
    names = cluster.kubectl("get", KINDS, "-n", namespace, "-o", "name").stdout.split()
    return sorted(set(names) - EVERY_NAMESPACE - keep)


def wait_until_empty(
    cluster: Cluster, namespace: str, keep: frozenset[str] | set[str] = frozenset(), timeout: float = 60
) -> None:
    """Until the namespace holds nothing but its defaults and `keep` (`kind/name`, as kubectl
    names them): KServe's children go with the garbage collector, after the InferenceService.
    Fails naming what stayed."""
    deadline = time.monotonic() + timeout
    while leftovers := namespace_leftovers(cluster, namespace, set(keep)):
        if time.monotonic() >= deadline:
            raise AssertionError(f"left behind in {namespace} after {timeout:.0f}s: {leftovers}")
        time.sleep(1)
