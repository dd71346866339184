"""`servekit-canary` in Knative mode on KServe v0.20.0's controller, with Knative Serving's CRDs
and no Knative controller: KServe makes the Knative Service and writes its traffic split from
`canaryTrafficPercent`; tests/cluster/knative_status.py writes the Service's status as Knative
would, and KServe reads it back into `status.components.predictor`. Checked here: start,
set-weight, promote, and the two-step rollback (0% with the previous spec restored, then the 0%
removed once the restored revision is ready)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.canary_tool import KNATIVE_OVERLAY, V2_URI, canary_cli, history_actions, json_of, ok, stable_objects
from tests.cluster.cluster import Cluster, condition_true
from tests.cluster.knative_status import knative_status

ISVC = "iris"
SERVICE = f"{ISVC}-predictor"  # KServe's Knative Service for the predictor
KNATIVE_NAMESPACE = "knative-serving"


def knative_serving_dir(work: Path, version: str) -> Path:
    """Knative Serving's release files, from its Go module zip (as hack/controlplane.sh gets its CRDs)."""
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    found = subprocess.run(
        ["go", "mod", "download", "-json", f"knative.dev/serving@{version}"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if found.returncode != 0:
        pytest.skip(f"go mod download knative.dev/serving@{version} failed: {found.stderr.strip()[-300:]}")
    return Path(json.loads(found.stdout)["Dir"])


@pytest.fixture(scope="module")
def knative_config(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Knative Serving's own config-autoscaler ConfigMap: KServe v0.20.0 reads it for every
    Knative-mode InferenceService and stops there without it. Cluster-wide, so it is left in place."""
    serving = knative_serving_dir(tmp_path_factory.mktemp("go"), cluster.versions["KNATIVE_SERVING_VERSION"])
    if cluster.get("namespace", KNATIVE_NAMESPACE) is None:
        cluster.kubectl("create", "namespace", KNATIVE_NAMESPACE)
    cluster.kubectl("apply", "-f", str(serving / "config" / "core" / "configmaps" / "autoscaler.yaml"))


@pytest.fixture
def knative_namespace(cluster: Cluster, namespace: str, knative_config: None) -> Iterator[str]:
    """A namespace whose Knative Services get the status Knative would write."""
    with knative_status(cluster, namespace) as writer:
        yield namespace
    assert not writer.errors or all("Conflict" in error or "conflict" in error for error in writer.errors), (
        writer.errors
    )


def predictor_status(cluster: Cluster, namespace: str) -> dict[str, Any]:
    found = cluster.get("inferenceservice", ISVC, namespace) or {}
    return dict(found.get("status", {}).get("components", {}).get("predictor", {}))


def wait_predictor(
    cluster: Cluster, namespace: str, what: str, check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Until KServe's InferenceService status says so (and the InferenceService is Ready)."""

    def settled() -> dict[str, Any] | None:
        found = cluster.get("inferenceservice", ISVC, namespace) or {}
        status = found.get("status", {}).get("components", {}).get("predictor", {})
        return status if condition_true(found, "Ready") and check(status) else None

    try:
        return cluster.wait_until(settled, 60, what)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{cluster.describe_isvc(namespace, ISVC)}") from None


def traffic(status: dict[str, Any]) -> list[tuple[str, int, str | None, bool]]:
    """(revision, percent, tag, latestRevision) of each target, as Knative resolved them."""
    return [
        (t["revisionName"], t["percent"], t.get("tag"), bool(t.get("latestRevision")))
        for t in status.get("traffic", [])
    ]


def service_traffic(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    """`spec.traffic` KServe wrote into its Knative Service."""
    service = cluster.get("services.serving.knative.dev", SERVICE, namespace)
    assert service is not None, f"KServe made no Knative Service {SERVICE}"
    return list(service["spec"]["traffic"])


def revision(number: int) -> str:
    return f"{SERVICE}-{number:05d}"


def start_stable(cluster: Cluster, namespace: str) -> dict[str, Any]:
    cluster.apply(stable_objects(KNATIVE_OVERLAY), namespace)
    status = wait_predictor(
        cluster, namespace, "the first revision rolled out", lambda s: s.get("latestRolledoutRevision") == revision(1)
    )
    service = cluster.get("services.serving.knative.dev", SERVICE, namespace)
    assert service is not None
    owners = [(ref["kind"], ref["name"], ref.get("controller")) for ref in service["metadata"]["ownerReferences"]]
    assert owners == [("InferenceService", ISVC, True)], "KServe's own Knative Service"
    return status


def test_start_set_weight_and_promote(cluster: Cluster, knative_namespace: str) -> None:
    namespace = knative_namespace
    assert traffic(start_stable(cluster, namespace)) == [(revision(1), 100, None, True)]

    started = json_of(canary_cli(cluster, namespace, "start", ISVC, "--name", "v2", "--storage-uri", V2_URI,
                                 "--weight", "10", "-o", "json"))  # fmt: skip
    assert (started["mode"], started["weight"]) == ("Knative", 10)
    assert service_traffic(cluster, namespace) == [
        {"latestRevision": True, "percent": 10},
        {"latestRevision": False, "percent": 90, "revisionName": revision(1), "tag": "prev"},
    ], "KServe splits the Knative Service's traffic by canaryTrafficPercent"
    status = wait_predictor(
        cluster, namespace, "the canary revision", lambda s: s.get("latestReadyRevision") == revision(2)
    )
    assert traffic(status) == [(revision(2), 10, None, True), (revision(1), 90, "prev", False)]
    shown = json_of(canary_cli(cluster, namespace, "status", ISVC, "-o", "json"))
    assert (shown["stable"], shown["canary"], shown["ready"]) == (revision(1), revision(2), True)

    ok(canary_cli(cluster, namespace, "set-weight", ISVC, "30"))
    status = wait_predictor(cluster, namespace, "30% to the canary", lambda s: traffic(s)[0][1] == 30)
    assert traffic(status) == [(revision(2), 30, None, True), (revision(1), 70, "prev", False)]

    promoted = json_of(canary_cli(cluster, namespace, "promote", ISVC, "-o", "json"))
    assert promoted["canary"] is None
    status = wait_predictor(
        cluster, namespace, "the canary rolled out", lambda s: s.get("latestRolledoutRevision") == revision(2)
    )
    assert traffic(status) == [(revision(2), 100, None, True)]
    assert status["previousRolledoutRevision"] == revision(1)
    assert service_traffic(cluster, namespace) == [{"latestRevision": True, "percent": 100}]
    assert history_actions(cluster, namespace, ISVC) == ["baseline", "start", "set-weight", "promote"]


def test_the_two_step_rollback(cluster: Cluster, knative_namespace: str) -> None:
    namespace = knative_namespace
    start_stable(cluster, namespace)
    stable_template = cluster.get("services.serving.knative.dev", SERVICE, namespace)["spec"]["template"]  # type: ignore[index]
    ok(canary_cli(cluster, namespace, "start", ISVC, "--name", "v2", "--storage-uri", V2_URI, "--weight", "20"))
    wait_predictor(cluster, namespace, "the canary revision", lambda s: s.get("latestReadyRevision") == revision(2))

    # Step one: 0% on a new revision of the previous spec; the stable one keeps every request.
    first = json_of(canary_cli(cluster, namespace, "rollback", ISVC, "-o", "json"))
    assert first["restoring"] is True and first["canary"] is None
    status = wait_predictor(
        cluster, namespace, "the restored revision", lambda s: s.get("latestReadyRevision") == revision(3)
    )
    assert traffic(status) == [(revision(3), 0, None, True), (revision(1), 100, "prev", False)]
    restored = cluster.get("services.serving.knative.dev", SERVICE, namespace)["spec"]["template"]  # type: ignore[index]
    assert restored["spec"] == stable_template["spec"], "the previous predictor spec is back"

    # Step two, once the restored revision is ready: the 0% goes, the restored revision takes all.
    second = ok(canary_cli(cluster, namespace, "rollback", ISVC))
    assert second.stdout.startswith("rollback finished: the restored spec serves all traffic"), second.stdout
    status = wait_predictor(
        cluster,
        namespace,
        "the restored revision rolled out",
        lambda s: s.get("latestRolledoutRevision") == revision(3),
    )
    assert traffic(status) == [(revision(3), 100, None, True)]
    isvc = cluster.get("inferenceservice", ISVC, namespace)
    assert isvc is not None and "canaryTrafficPercent" not in isvc["spec"]["predictor"]
    third = json_of(canary_cli(cluster, namespace, "rollback", ISVC, "-o", "json"))
    assert third["changed"] is False
    assert history_actions(cluster, namespace, ISVC) == ["baseline", "start", "rollback"]
