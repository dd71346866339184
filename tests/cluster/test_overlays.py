"""Every kustomize overlay applied for real (`kubectl apply -k`) into a namespace that enforces Pod
Security "restricted" and reconciled by KServe; the Knative-mode overlays go through a server-side
dry run (no Knative controller runs), so the API server and KServe's webhooks still judge them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.cluster import Cluster
from tests.cluster.leftovers import wait_until_empty
from tests.cluster.workload import check_reconciled
from tests.support.rendering import KUSTOMIZATIONS, kustomize_build


def is_knative(directory: Path) -> bool:
    return any(
        obj.get("metadata", {}).get("annotations", {}).get("serving.kserve.io/deploymentMode") == "Knative"
        for obj in kustomize_build(directory)
    )


STANDARD_OVERLAYS = [path for path in KUSTOMIZATIONS if not is_knative(path)]
KNATIVE_OVERLAYS = [path for path in KUSTOMIZATIONS if is_knative(path)]


def overlay_id(path: Path) -> str:
    return path.name


@pytest.mark.parametrize("overlay", STANDARD_OVERLAYS, ids=overlay_id)
def test_apply_reconcile_delete(cluster: Cluster, namespace: str, overlay: Path) -> None:
    cluster.kubectl("apply", "-k", str(overlay), "-n", namespace)
    check_reconciled(cluster, namespace, kustomize_build(overlay))
    cluster.kubectl("delete", "-k", str(overlay), "-n", namespace, "--wait=false")
    wait_until_empty(cluster, namespace)


@pytest.mark.parametrize("overlay", KNATIVE_OVERLAYS, ids=overlay_id)
def test_knative_overlay_passes_a_server_side_dry_run(cluster: Cluster, namespace: str, overlay: Path) -> None:
    output = cluster.kubectl("apply", "-k", str(overlay), "-n", namespace, "--dry-run=server").stdout
    assert "inferenceservice.serving.kserve.io/" in output
