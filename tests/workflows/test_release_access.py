"""manifests/release-access/: the ServiceAccount and Roles model-release.yml acts as. Valid objects,
bound to each other, granting what a rollout does and no more (least privilege, no cluster roles)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.k8s_checks import ObjectValidator
from tests.workflows.workflow_files import REPO_ROOT

ACCESS_DIR = REPO_ROOT / "manifests" / "release-access"
SERVICE_ACCOUNT = ("models", "servekit-release")
# (namespace, API group, resource, verb) a rollout needs, and why.
NEEDED = {
    ("models", "serving.kserve.io", "inferenceservices", "get"): "read the spec and KServe's status",
    ("models", "serving.kserve.io", "inferenceservices", "patch"): "start, promote, roll back",
    ("models", "", "configmaps", "create"): "the first entry of <isvc>-canary-history",
    ("models", "", "configmaps", "update"): "later entries of <isvc>-canary-history",
    ("models", "", "events", "list"): "what was recorded, shown after a rollback",
    ("models", "servekit.dev", "canaryanalyses", "get"): "controller mode: read status.phase",
    ("models", "servekit.dev", "canaryanalyses", "create"): "controller mode: first server-side apply",
    ("models", "servekit.dev", "canaryanalyses", "patch"): "controller mode: later server-side applies",
    ("monitoring", "", "pods/portforward", "create"): "cli mode: reach Prometheus with --prometheus-service",
    ("monitoring", "", "services", "get"): "kubectl port-forward service/NAME",
}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(ACCESS_DIR.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def granted() -> set[tuple[str, str, str, str]]:
    roles = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects() if o["kind"] == "Role"}
    grants = set()
    for binding in (o for o in objects() if o["kind"] == "RoleBinding"):
        namespace = binding["metadata"]["namespace"]
        subjects = {(s["namespace"], s["name"]) for s in binding["subjects"] if s["kind"] == "ServiceAccount"}
        if SERVICE_ACCOUNT not in subjects:
            continue
        role = roles[(namespace, binding["roleRef"]["name"])]
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                grants |= {(namespace, group, res, verb) for res in rule["resources"] for verb in rule["verbs"]}
    return grants


@pytest.mark.parametrize("obj", objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_objects_are_valid(obj: dict[str, Any], object_validator: ObjectValidator) -> None:
    assert object_validator.problems(obj) == []
    assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "servekit"


def test_only_namespaced_roles_and_a_token_for_the_service_account() -> None:
    kinds = sorted(o["kind"] for o in objects())
    assert kinds == ["Role", "Role", "RoleBinding", "RoleBinding", "Secret", "ServiceAccount"]
    (account,) = [o for o in objects() if o["kind"] == "ServiceAccount"]
    assert (account["metadata"]["namespace"], account["metadata"]["name"]) == SERVICE_ACCOUNT
    assert account["automountServiceAccountToken"] is False, "nothing runs as it inside the cluster"
    (token,) = [o for o in objects() if o["kind"] == "Secret"]
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == SERVICE_ACCOUNT[1]


@pytest.mark.parametrize(("need", "why"), NEEDED.items(), ids=lambda v: "/".join(v) if isinstance(v, tuple) else "")
def test_the_release_identity_may_do_what_a_rollout_does(need: tuple[str, str, str, str], why: str) -> None:
    assert need in granted(), f"{need} is needed to {why}"


def test_no_wildcards_and_no_deletes() -> None:
    for namespace, group, resource, verb in granted():
        assert "*" not in (group, resource, verb), f"{namespace}: wildcard in {group}/{resource} {verb}"
        assert verb not in {"delete", "deletecollection", "escalate", "bind", "impersonate"}, (resource, verb)


def test_writes_stay_in_the_models_namespace_except_the_port_forward() -> None:
    writes = {(ns, res) for ns, _, res, verb in granted() if verb in WRITE_VERBS}
    assert {res for ns, res in writes if ns != "models"} == {"pods/portforward"}


def test_docs_apply_these_files() -> None:
    docs = (REPO_ROOT / "docs" / "cicd.md").read_text()
    for path in ACCESS_DIR.glob("*.yaml"):
        assert f"kubectl apply -f {Path(path).relative_to(REPO_ROOT)}" in docs
