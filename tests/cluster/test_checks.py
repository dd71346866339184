"""The cluster tests' own checks, on objects written here: they must catch what they are for."""

from __future__ import annotations

from typing import Any

from tests.cluster.cluster import expected_deployments
from tests.cluster.workload import canary_replicas, deployment_problems, mismatches, stable_min_replicas

CONTAINER = {
    "name": "kserve-container",
    "image": "servekit/predictor:0.1.0",
    "env": [{"name": "PREDICTOR_MODEL_NAME", "value": "iris"}],
    "resources": {"limits": {"cpu": 2, "memory": "1Gi"}},
}


def deployment_running(container: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "iris-predictor"}, "spec": {"template": {"spec": {"containers": [container]}}}}


def test_what_kserve_and_the_api_server_add_is_no_mismatch() -> None:
    theirs = {
        **CONTAINER,
        "env": [*CONTAINER["env"], {"name": "STORAGE_URI", "value": "s3://x"}],
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}},
        "terminationMessagePath": "/dev/termination-log",
    }
    assert deployment_problems(deployment_running(theirs), {"containers": [CONTAINER]}) == []


def test_a_changed_or_missing_field_is_named() -> None:
    theirs = {**CONTAINER, "image": "servekit/predictor:0.0.9", "env": []}
    assert deployment_problems(deployment_running(theirs), {"containers": [CONTAINER]}) == [
        "iris-predictor container.image: expected 'servekit/predictor:0.1.0', got 'servekit/predictor:0.0.9'",
        "iris-predictor container.env[PREDICTOR_MODEL_NAME]: expected a map, got None",
    ]
    assert deployment_problems(deployment_running({"name": "other"}), {"containers": [CONTAINER]}) == [
        "iris-predictor: no container 'kserve-container'"
    ]


def test_unnamed_lists_compare_in_order() -> None:
    assert mismatches(["a", "b"], ["b", "a"], "args") == [
        "args[0]: expected 'a', got 'b'",
        "args[1]: expected 'b', got 'a'",
    ]


def isvc(min_replicas: int, *canaries: dict[str, Any], stable_name: str | None = "v1") -> dict[str, Any]:
    predictor: dict[str, Any] = {"minReplicas": min_replicas}
    if stable_name:
        predictor["name"] = stable_name
    return {"metadata": {"name": "iris"}, "spec": {"predictor": predictor, "canary": list(canaries)}}


def test_deployment_names_follow_kserve() -> None:
    assert expected_deployments(isvc(1, stable_name=None)) == ["iris-predictor"]
    canary = {"trafficPercent": 10, "predictor": {"name": "v2"}}
    assert expected_deployments(isvc(1, canary)) == ["iris-v1-predictor", "iris-v2-predictor"]


def test_replicas_follow_kserve_canary_rules() -> None:
    sized = {"trafficPercent": 30, "predictor": {"name": "v2"}}
    fixed = {"trafficPercent": 10, "predictor": {"name": "v3", "minReplicas": 2}}
    assert canary_replicas(isvc(4, sized), sized) == 2  # ceil(4 x 30 / 100)
    assert canary_replicas(isvc(4, fixed), fixed) == 2
    assert stable_min_replicas(isvc(4, sized, fixed)) == 1  # 4 - 2 - 2, at least 1
    assert stable_min_replicas(isvc(5, sized)) == 3
    assert stable_min_replicas(isvc(3)) == 3
