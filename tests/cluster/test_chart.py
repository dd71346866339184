"""The Helm chart installed for real (helm-python-sdk's install, upgrade and uninstall) into a
namespace that enforces Pod Security "restricted", for every Standard-mode `ci/*-values.yaml`, and
reconciled by KServe's own controller; the Knative-mode values go through a server-side dry run
(no Knative controller runs), so the API server and KServe's webhooks still judge them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import helm_python
import pytest

from tests.cluster.cluster import Cluster, expected_deployments
from tests.cluster.leftovers import kserve_orphans, wait_until_empty
from tests.cluster.workload import PREDICTOR_CONTAINER, check_reconciled, container_named, the_one
from tests.support.rendering import CI_VALUES, ci_values, parse_documents

RELEASE = "ci"
STANDARD_VALUES = [path for path in CI_VALUES if ci_values(path).get("deploymentMode", "Standard") == "Standard"]
KNATIVE_VALUES = [path for path in CI_VALUES if path not in STANDARD_VALUES]
UPGRADE_ENV = {"name": "SERVEKIT_UPGRADE_CHECK", "value": "revision-2"}


def values_id(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


def create_what_the_values_expect(cluster: Cluster, namespace: str, values: dict[str, Any]) -> set[str]:
    """Objects a scenario names but leaves to the user: an existing ServiceAccount, the namespace
    the Grafana dashboard goes to. Returns those in the release namespace as `kind/name`, for they
    stay after an uninstall."""
    dashboard_namespace = values.get("metrics", {}).get("grafanaDashboard", {}).get("namespace")
    if dashboard_namespace:
        namespace_object = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": dashboard_namespace}}
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(namespace_object))
    account = values.get("serviceAccount", {})
    if account.get("create") is False and account.get("name"):
        cluster.kubectl("create", "serviceaccount", account["name"], "-n", namespace)
        return {f"serviceaccount/{account['name']}"}
    return set()


def check_gone_elsewhere(cluster: Cluster, namespace: str, rendered: list[dict[str, Any]]) -> None:
    """What the release put in other namespaces went with it too."""
    for obj in rendered:
        elsewhere = obj["metadata"].get("namespace")
        if elsewhere and elsewhere != namespace:
            name = obj["metadata"]["name"]
            assert cluster.get(obj["kind"], name, elsewhere) is None, f"{obj['kind']} {elsewhere}/{name} stayed"


def with_upgrade_env(values: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(values)
    predictor = changed.setdefault("predictor", {})
    predictor["extraEnv"] = [*predictor.get("extraEnv", []), UPGRADE_ENV]
    return changed


@pytest.mark.parametrize("values_file", STANDARD_VALUES, ids=values_id)
def test_install_upgrade_uninstall(
    cluster: Cluster, helm: helm_python.Config, chart: helm_python.Chart, namespace: str, values_file: Path
) -> None:
    values = ci_values(values_file)
    users_own = create_what_the_values_expect(cluster, namespace, values)
    rendered = parse_documents(helm.install(chart, RELEASE, values)["manifest"])
    check_reconciled(cluster, namespace, rendered)

    upgraded = parse_documents(helm.upgrade(chart, RELEASE, with_upgrade_env(values))["manifest"])
    isvc = check_reconciled(cluster, namespace, upgraded)
    stable = cluster.get("deployment", expected_deployments(isvc)[0], namespace)
    assert stable is not None
    env = container_named(stable["spec"]["template"]["spec"], PREDICTOR_CONTAINER)["env"]
    assert UPGRADE_ENV in env, f"helm upgrade did not reach KServe's Deployment: {env}"

    helm.uninstall(RELEASE)
    orphans = kserve_orphans(the_one(upgraded, "InferenceService"), cluster.kserve_version)
    wait_until_empty(cluster, namespace, keep=users_own | orphans)
    check_gone_elsewhere(cluster, namespace, upgraded)


@pytest.mark.parametrize("values_file", KNATIVE_VALUES, ids=values_id)
def test_knative_values_pass_a_server_side_dry_run(
    helm: helm_python.Config, chart: helm_python.Chart, values_file: Path
) -> None:
    release = helm.install(chart, RELEASE, ci_values(values_file), dry_run="server")
    kinds = {obj["kind"] for obj in parse_documents(release["manifest"])}
    assert "InferenceService" in kinds
