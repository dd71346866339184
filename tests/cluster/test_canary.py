"""Standard-mode canaries on KServe's own controller, from the chart's values and from the overlay:
the canary Deployment next to the stable one, `status.canaryStatuses`, the HTTPRoute weights,
rolling back (drop the entry) and promoting (the stable predictor takes the canary's name), as
KServe documents them; and canaries KServe's webhook refuses, with its message."""

from __future__ import annotations

import copy
import json
from typing import Any

import helm_python
import pytest

from tests.cluster.canary_checks import (
    check_promoted,
    check_rolled_back,
    check_route_weights,
    skip_without_route_weights,
    uid_of,
)
from tests.cluster.cluster import Cluster, KubectlError, condition
from tests.cluster.workload import check_reconciled
from tests.support.rendering import CHART_DIR, MANIFESTS_DIR, ci_values, kustomize_build, parse_documents

OVERLAY = MANIFESTS_DIR / "overlays" / "standard-canary"
CANARY_VALUES = CHART_DIR / "ci" / "standard-canary-values.yaml"
RELEASE = "canary"


def canary_values(**standard: Any) -> dict[str, Any]:
    values = ci_values(CANARY_VALUES)
    values["canary"]["standard"].update(standard)
    # The canary controller would act on the rollout; these tests drive KServe's fields by hand.
    values["canaryAnalysis"]["enabled"] = False
    values["canaryController"]["enabled"] = False
    return values


def promoted_values() -> dict[str, Any]:
    """The chart's promotion: the stable predictor takes the canary's name and model, no canary."""
    values = canary_values(enabled=False)
    values["predictor"]["name"] = values["canary"]["standard"]["name"]
    values["model"]["storageUri"] = values["canary"]["standard"]["storageUri"]
    return values


def check_canary_running(cluster: Cluster, namespace: str, rendered: list[dict[str, Any]]) -> dict[str, Any]:
    isvc = check_reconciled(cluster, namespace, rendered)
    (entry,) = isvc["spec"]["canary"]
    reported = [
        {key: status.get(key) for key in ("name", "ready", "trafficPercent")}
        for status in isvc["status"]["canaryStatuses"]
    ]
    assert reported == [{"name": entry["predictor"]["name"], "ready": True, "trafficPercent": entry["trafficPercent"]}]
    canary_ready = condition(isvc, "CanaryPredictorReady")
    assert canary_ready is not None and canary_ready["reason"] == "AllCanariesReady"
    return isvc


def test_chart_canary_rollback_and_promotion(
    cluster: Cluster, helm: helm_python.Config, chart: helm_python.Chart, namespace: str
) -> None:
    values = canary_values()
    rendered = helm.install(chart, RELEASE, values)["manifest"]
    isvc = check_canary_running(cluster, namespace, parse_documents(rendered))
    name, stable, canary = isvc["metadata"]["name"], values["predictor"]["name"], values["canary"]["standard"]["name"]

    helm.upgrade(chart, RELEASE, canary_values(enabled=False))
    check_rolled_back(cluster, namespace, name, stable)

    check_canary_running(cluster, namespace, parse_documents(helm.upgrade(chart, RELEASE, values)["manifest"]))
    canary_uid = uid_of(cluster, "deployment", f"{name}-{canary}-predictor", namespace)
    helm.upgrade(chart, RELEASE, promoted_values())
    check_promoted(cluster, namespace, name, canary, canary_uid)


def patch_isvc(cluster: Cluster, namespace: str, name: str, operations: list[dict[str, Any]]) -> None:
    cluster.kubectl("patch", "inferenceservice", name, "-n", namespace, "--type=json", "-p", json.dumps(operations))


def test_overlay_canary_rollback_and_promotion(cluster: Cluster, namespace: str) -> None:
    rendered = kustomize_build(OVERLAY)
    cluster.kubectl("apply", "-k", str(OVERLAY), "-n", namespace)
    isvc = check_canary_running(cluster, namespace, rendered)
    name, stable = isvc["metadata"]["name"], isvc["spec"]["predictor"]["name"]
    (entry,) = isvc["spec"]["canary"]
    canary = entry["predictor"]["name"]

    patch_isvc(cluster, namespace, name, [{"op": "remove", "path": "/spec/canary"}])
    check_rolled_back(cluster, namespace, name, stable)

    cluster.kubectl("apply", "-k", str(OVERLAY), "-n", namespace)
    check_canary_running(cluster, namespace, rendered)
    canary_uid = uid_of(cluster, "deployment", f"{name}-{canary}-predictor", namespace)
    # As the overlay's header says: the stable predictor takes the canary's name and model.
    canary_env = entry["predictor"]["containers"][0]["env"]
    patch_isvc(
        cluster,
        namespace,
        name,
        [
            {"op": "replace", "path": "/spec/predictor/name", "value": canary},
            {"op": "replace", "path": "/spec/predictor/containers/0/env", "value": canary_env},
            {"op": "remove", "path": "/spec/canary"},
        ],
    )
    check_promoted(cluster, namespace, name, canary, canary_uid)


def test_httproute_weights_follow_the_canary_split(cluster: Cluster, namespace: str) -> None:
    skip_without_route_weights(cluster)
    rendered = kustomize_build(OVERLAY)
    cluster.kubectl("apply", "-k", str(OVERLAY), "-n", namespace)
    check_route_weights(cluster, namespace, check_canary_running(cluster, namespace, rendered))


def canary_entry(name: str, percent: int, **predictor: Any) -> dict[str, Any]:
    """A canary entry as the overlay writes it (its container), renamed, with fields on top."""
    (isvc,) = [obj for obj in kustomize_build(OVERLAY) if obj["kind"] == "InferenceService"]
    containers = copy.deepcopy(isvc["spec"]["canary"][0]["predictor"]["containers"])
    return {"trafficPercent": percent, "predictor": {"name": name, "containers": containers, **predictor}}


REFUSED = {
    "weights over 100": (
        [canary_entry("v2", 60), canary_entry("v3", 50)],
        "sum of canary trafficPercent values (110) must be <= 100",
    ),
    "duplicate names": ([canary_entry("v2", 10), canary_entry("v2", 20)], 'canary predictor.name "v2" is duplicated'),
    "the stable predictor's name": ([canary_entry("v1", 10)], 'canary predictor.name "v1" conflicts with stable'),
    "autoscaling on a canary": (
        [canary_entry("v2", 10, maxReplicas=4)],
        'canary "v2" must not set maxReplicas (canary uses fixed replicas)',
    ),
    "more canary replicas than stable": (
        [canary_entry("v2", 10, minReplicas=3)],
        'canary "v2" minReplicas (3) must not exceed stable predictor minReplicas (1)',
    ),
}


@pytest.mark.parametrize(("canaries", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_kserve_webhook_refuses_bad_canaries_with_its_message(
    cluster: Cluster, namespace: str, canaries: list[dict[str, Any]], message: str
) -> None:
    (isvc,) = [obj for obj in kustomize_build(OVERLAY) if obj["kind"] == "InferenceService"]
    isvc = copy.deepcopy(isvc)
    isvc["spec"]["canary"] = canaries
    with pytest.raises(KubectlError) as refused:
        cluster.apply([isvc], namespace)
    assert 'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request' in str(
        refused.value
    )
    assert message in str(refused.value)
