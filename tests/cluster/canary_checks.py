"""Checks of KServe's Standard-mode canary on the cluster, shared by the canary tests (KServe's own
fields by hand, `servekit-canary` commands, the controller, hack/model-release.sh): what runs after a
rollback or a promotion, and the HTTPRoute's weights."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.cluster import Cluster, condition
from tests.cluster.workload import isvc_routes

# KServe releases whose controller writes canary weights into the HTTPRoute (kserve PR #5912).
NO_ROUTE_WEIGHTS = {"v0.20.0"}


def deployment_names(cluster: Cluster, namespace: str, isvc: str) -> list[str]:
    return sorted(d["metadata"]["name"] for d in cluster.isvc_deployments(namespace, isvc))


def uid_of(cluster: Cluster, kind: str, name: str, namespace: str) -> str:
    found = cluster.get(kind, name, namespace)
    assert found is not None, f"no {kind} {name}"
    return str(found["metadata"]["uid"])


def check_rolled_back(cluster: Cluster, namespace: str, name: str, stable: str) -> None:
    """Only the stable predictor runs; KServe reports no canary any more."""

    def no_canary_reported(isvc: dict[str, Any], _: dict[str, Any]) -> bool:
        return not isvc["status"].get("canaryStatuses") and condition(isvc, "CanaryPredictorReady") is None

    cluster.wait_for_isvc(namespace, name, caught_up=no_canary_reported)
    assert deployment_names(cluster, namespace, name) == [f"{name}-{stable}-predictor"]


def check_promoted(cluster: Cluster, namespace: str, name: str, canary: str, canary_uid: str) -> None:
    """The canary's Deployment is now the stable one: same object, its pods kept."""
    cluster.wait_for_isvc(namespace, name)
    promoted = f"{name}-{canary}-predictor"
    assert deployment_names(cluster, namespace, name) == [promoted]
    assert uid_of(cluster, "deployment", promoted, namespace) == canary_uid


def skip_without_route_weights(cluster: Cluster) -> None:
    if cluster.kserve_version in NO_ROUTE_WEIGHTS:
        pytest.skip(
            f"KServe {cluster.kserve_version} creates the canary but does not write its weight into the "
            "HTTPRoute's backendRefs (kserve PR #5912, after v0.20.0); runs once hack/versions.env pins a later KServe"
        )


def check_route_weights(cluster: Cluster, namespace: str, isvc: dict[str, Any]) -> None:
    """KServe's HTTPRoutes send each predictor its share: the canary its trafficPercent, the
    stable predictor the rest."""
    name, stable = isvc["metadata"]["name"], isvc["spec"]["predictor"]["name"]
    (entry,) = isvc["spec"]["canary"]
    expected = {
        f"{name}-{stable}-predictor": 100 - entry["trafficPercent"],
        f"{name}-{entry['predictor']['name']}-predictor": entry["trafficPercent"],
    }
    weights = {
        ref["name"]: ref.get("weight", 1)
        for route in isvc_routes(cluster, namespace, name)
        for rule in route["spec"]["rules"]
        for ref in rule.get("backendRefs", [])
    }
    assert {key: weights.get(key) for key in expected} == expected, weights
