"""What a backup keeps of an object, and the patch that brings a live object back to it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from predictor.backup.objects import ObjectError, clean, helm_release, kind_of, patch_ops, retarget

LIVE_ISVC: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {
        "name": "demo-servekit",
        "namespace": "models",
        "uid": "4eaca164-b7f5-4a59-98d7-9be6d6a1184d",
        "resourceVersion": "2923",
        "generation": 2,
        "creationTimestamp": "2026-11-26T09:01:31Z",
        "finalizers": ["inferenceservice.finalizers"],
        "managedFields": [{"manager": "python", "operation": "Apply"}],
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1"}],
        "labels": {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "demo"},
        "annotations": {
            "meta.helm.sh/release-name": "demo",
            "meta.helm.sh/release-namespace": "models",
            "serving.kserve.io/deploymentMode": "Standard",
            "kubectl.kubernetes.io/last-applied-configuration": '{"spec": {}}',
        },
    },
    "spec": {"predictor": {"name": "v2", "minReplicas": 1}},
    "status": {"conditions": [{"type": "Ready", "status": "True"}], "observedGeneration": 1},
}


def test_clean_keeps_what_a_user_wrote_and_drops_what_the_server_set() -> None:
    assert clean(LIVE_ISVC) == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "demo-servekit",
            "labels": {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "demo"},
            "annotations": {
                "meta.helm.sh/release-name": "demo",
                "meta.helm.sh/release-namespace": "models",
                "serving.kserve.io/deploymentMode": "Standard",
            },
        },
        "spec": {"predictor": {"name": "v2", "minReplicas": 1}},
    }


def test_clean_leaves_its_argument_alone() -> None:
    live = copy.deepcopy(LIVE_ISVC)
    clean(live)["spec"]["predictor"]["name"] = "changed"
    assert live == LIVE_ISVC


def test_clean_of_a_history_configmap_keeps_its_data() -> None:
    history = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "demo-canary-history", "uid": "u", "resourceVersion": "9"},
        "data": {"history.json": "[]"},
    }
    assert clean(history) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "demo-canary-history"},
        "data": {"history.json": "[]"},
    }


def test_clean_of_a_service_account_drops_its_token_secrets_and_keeps_pull_secrets() -> None:
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "iris-predictor"},
        "secrets": [{"name": "iris-predictor-token-abcde"}],
        "imagePullSecrets": [{"name": "registry"}],
        "automountServiceAccountToken": False,
    }
    assert clean(account) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "iris-predictor"},
        "automountServiceAccountToken": False,
        "imagePullSecrets": [{"name": "registry"}],
    }


def test_only_the_kinds_a_backup_holds_are_accepted() -> None:
    with pytest.raises(ObjectError, match="kind 'Secret' is not one a backup holds"):
        kind_of({"kind": "Secret", "metadata": {"name": "s"}})


def test_retarget_moves_the_object_and_helms_ownership_with_it() -> None:
    moved = retarget(clean(LIVE_ISVC), "restored")
    assert moved["metadata"]["namespace"] == "restored"
    assert moved["metadata"]["annotations"]["meta.helm.sh/release-namespace"] == "restored"
    assert helm_release(moved) == "demo"


def test_retarget_adds_no_helm_annotation_to_objects_outside_helm() -> None:
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a"}}
    assert retarget(account, "ns") == {**account, "metadata": {"name": "a", "namespace": "ns"}}
    assert helm_release(account) is None


def test_no_patch_for_an_object_that_is_as_backed_up() -> None:
    wanted = retarget(clean(LIVE_ISVC), "models")
    assert patch_ops(wanted, LIVE_ISVC) == []


def test_the_spec_is_replaced_whole() -> None:
    wanted = retarget(clean(LIVE_ISVC), "models")
    live = copy.deepcopy(LIVE_ISVC)
    live["spec"] = {"predictor": {"name": "v1", "minReplicas": 1}, "canary": [{"trafficPercent": 10}]}
    assert patch_ops(wanted, live) == [{"op": "add", "path": "/spec", "value": wanted["spec"]}]


def test_labels_and_annotations_are_set_key_by_key_and_others_stay() -> None:
    wanted = retarget(clean(LIVE_ISVC), "restored")
    live = copy.deepcopy(LIVE_ISVC)
    live["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "kustomize", "team": "ml"}
    assert patch_ops(wanted, live) == [
        {"op": "add", "path": "/metadata/labels/app.kubernetes.io~1managed-by", "value": "Helm"},
        {"op": "add", "path": "/metadata/labels/app.kubernetes.io~1instance", "value": "demo"},
        {"op": "add", "path": "/metadata/annotations/meta.helm.sh~1release-namespace", "value": "restored"},
    ]


def test_labels_are_added_as_a_map_where_the_live_object_has_none() -> None:
    wanted = retarget(clean(LIVE_ISVC), "models")
    live = copy.deepcopy(LIVE_ISVC)
    del live["metadata"]["labels"]
    assert patch_ops(wanted, live) == [{"op": "add", "path": "/metadata/labels", "value": wanted["metadata"]["labels"]}]


def test_a_content_field_the_backup_lacks_is_removed() -> None:
    wanted = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a"}}
    live = {**wanted, "imagePullSecrets": [{"name": "old"}]}
    assert patch_ops(wanted, live) == [{"op": "remove", "path": "/imagePullSecrets"}]
