"""`servekit-canary` by hand on real InferenceServices in Standard mode, as a real process with a
kubeconfig, with KServe v0.20.0's controller and webhooks reacting: the canary Deployment
`<isvc>-<name>-predictor` appears and rolls out on kwok's nodes, `status.canaryStatuses` reports
it, promotion leaves `spec.predictor.name` = the canary's and KServe keeps the canary's pods,
rollback removes the canary Deployment; dry runs, JSON output, the history ConfigMap, restore,
idempotence, refusals, and two writers racing on one InferenceService."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from predictor.canary import isvc as canary_spec
from predictor.canary.kube import KubeInferenceServices, api_client
from tests.cluster.canary_checks import (
    check_promoted,
    check_rolled_back,
    check_route_weights,
    deployment_names,
    skip_without_route_weights,
    uid_of,
)
from tests.cluster.canary_tool import (
    V2_URI,
    canary_cli,
    history_actions,
    history_config_map,
    json_of,
    ok,
    spec_generation,
    start_stable,
    token_kubeconfig,
    wait_canary_ready,
)
from tests.cluster.cluster import Cluster, condition

ISVC = "iris"


def test_start_set_weight_promote_and_history(cluster: Cluster, namespace: str) -> None:
    start_stable(cluster, namespace, ISVC)
    before = spec_generation(cluster, namespace, ISVC)
    start = ["start", ISVC, "--name", "v2", "--storage-uri", V2_URI, "--weight", "10"]

    dry = ok(canary_cli(cluster, namespace, *start, "--dry-run"))
    assert "+  canary:" in dry.stdout and f"value: {V2_URI}" in dry.stdout, dry.stdout
    assert spec_generation(cluster, namespace, ISVC) == before, "--dry-run wrote the InferenceService"
    assert cluster.get("configmap", f"{ISVC}-canary-history", namespace) is None, "--dry-run wrote a history"

    started = json_of(canary_cli(cluster, namespace, *start, "-o", "json"))
    assert (started["action"], started["stable"], started["canary"], started["weight"]) == ("start", "v1", "v2", 10)
    wait_canary_ready(cluster, namespace, ISVC, "v2", 10)
    generation = spec_generation(cluster, namespace, ISVC)
    assert json_of(canary_cli(cluster, namespace, *start, "-o", "json"))["changed"] is False, "the same start again"
    assert spec_generation(cluster, namespace, ISVC) == generation
    status = json_of(canary_cli(cluster, namespace, "status", ISVC, "-o", "json"))
    assert (status["mode"], status["canary"], status["ready"]) == ("Standard", "v2", True)

    ok(canary_cli(cluster, namespace, "set-weight", ISVC, "40"))
    wait_canary_ready(cluster, namespace, ISVC, "v2", 40)
    settled = spec_generation(cluster, namespace, ISVC)
    again = json_of(canary_cli(cluster, namespace, "set-weight", ISVC, "40", "-o", "json"))
    assert (again["weight"], again["changed"]) == (40, False)
    assert spec_generation(cluster, namespace, ISVC) == settled, "a no-op wrote"

    canary_uid = uid_of(cluster, "deployment", f"{ISVC}-v2-predictor", namespace)
    canary_pods = cluster.names("pods", namespace, f"app=isvc.{ISVC}-v2-predictor")
    promoted = json_of(canary_cli(cluster, namespace, "promote", ISVC, "-o", "json"))
    assert (promoted["stable"], promoted["canary"]) == ("v2", None)
    check_promoted(cluster, namespace, ISVC, "v2", canary_uid)
    assert cluster.names("pods", namespace, f"app=isvc.{ISVC}-v2-predictor") == canary_pods, "KServe kept its pods"
    repeated = ok(canary_cli(cluster, namespace, "promote", ISVC))
    assert repeated.stdout.startswith("nothing to do: InferenceService 'iris' has no canary to promote")

    check_history(cluster, namespace)
    # Restore the baseline: the stable predictor v1 with its own model, reconciled by KServe.
    ok(canary_cli(cluster, namespace, "restore", ISVC, "1"))
    check_rolled_back(cluster, namespace, ISVC, "v1")
    assert json_of(canary_cli(cluster, namespace, "restore", ISVC, "1", "-o", "json"))["changed"] is False
    assert history_actions(cluster, namespace, ISVC)[-2:] == ["promote", "restore"]


def check_history(cluster: Cluster, namespace: str) -> None:
    """The ConfigMap's labels and entries after baseline, start, set-weight and promote."""
    config_map = history_config_map(cluster, namespace, ISVC)
    labels = config_map["metadata"]["labels"]
    assert labels == {"app.kubernetes.io/managed-by": "servekit-canary", "servekit.dev/inferenceservice": ISVC}
    entries = json.loads(config_map["data"]["history.json"])
    assert [(e["revision"], e["action"]) for e in entries] == [
        (1, "baseline"), (2, "start"), (3, "set-weight"), (4, "promote"),
    ]  # fmt: skip
    assert [e["predictor"]["name"] for e in entries] == ["v1", "v1", "v1", "v2"]
    assert [[(c["predictor"]["name"], c["trafficPercent"]) for c in e["canary"] or []] for e in entries] == [
        [], [("v2", 10)], [("v2", 40)], [],
    ]  # fmt: skip
    assert all(e["time"].endswith("Z") for e in entries)
    shown = json_of(canary_cli(cluster, namespace, "history", ISVC, "-o", "json"))
    assert shown == entries


def test_set_weight_moves_the_httproute_weights(cluster: Cluster, namespace: str) -> None:
    skip_without_route_weights(cluster)
    start_stable(cluster, namespace, ISVC)
    ok(canary_cli(cluster, namespace, "start", ISVC, "--name", "v2", "--storage-uri", V2_URI, "--weight", "10"))
    wait_canary_ready(cluster, namespace, ISVC, "v2", 10)
    ok(canary_cli(cluster, namespace, "set-weight", ISVC, "30"))
    check_route_weights(cluster, namespace, wait_canary_ready(cluster, namespace, ISVC, "v2", 30))


def test_rollback_removes_the_canary_deployment(cluster: Cluster, namespace: str) -> None:
    start_stable(cluster, namespace, ISVC)
    ok(canary_cli(cluster, namespace, "start", ISVC, "--name", "v2", "--storage-uri", V2_URI, "--weight", "20"))
    wait_canary_ready(cluster, namespace, ISVC, "v2", 20)

    dry = ok(canary_cli(cluster, namespace, "rollback", ISVC, "--dry-run"))
    assert "-  canary:" in dry.stdout
    assert cluster.get("inferenceservice", ISVC, namespace)["spec"]["canary"], "--dry-run removed the canary"  # type: ignore[index]

    rolled_back = json_of(canary_cli(cluster, namespace, "abort", ISVC, "-o", "json"))
    assert (rolled_back["action"], rolled_back["canary"]) == ("rollback", None)
    check_rolled_back(cluster, namespace, ISVC, "v1")
    again = json_of(canary_cli(cluster, namespace, "rollback", ISVC, "-o", "json"))
    assert again["changed"] is False and "no canary to roll back" in again["message"]
    assert history_actions(cluster, namespace, ISVC) == ["baseline", "start", "rollback"]


def test_a_canary_of_another_image_is_promoted_under_the_stable_name(cluster: Cluster, namespace: str) -> None:
    """KServe's webhook refuses a predictor.name change without a new model; the tool rolls the
    stable predictor to the canary's image instead."""
    start_stable(cluster, namespace, ISVC)
    ok(canary_cli(cluster, namespace, "start", ISVC, "--name", "v2", "--image", "servekit/predictor:0.2.0"))
    wait_canary_ready(cluster, namespace, ISVC, "v2", 0)
    ok(canary_cli(cluster, namespace, "promote", ISVC))

    def rolled(isvc: dict[str, Any], deployments: dict[str, Any]) -> bool:
        (deployment,) = deployments.values()
        images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
        return "servekit/predictor:0.2.0" in images and condition(isvc, "CanaryPredictorReady") is None

    isvc = cluster.wait_for_isvc(namespace, ISVC, caught_up=rolled)
    assert isvc["spec"]["predictor"]["name"] == "v1" and "canary" not in isvc["spec"]
    assert deployment_names(cluster, namespace, ISVC) == [f"{ISVC}-v1-predictor"]


def test_refusals_exit_2_and_change_nothing(cluster: Cluster, namespace: str) -> None:
    start_stable(cluster, namespace, ISVC)
    ok(canary_cli(cluster, namespace, "start", ISVC, "--name", "v2", "--storage-uri", V2_URI, "--weight", "10"))
    before = spec_generation(cluster, namespace, ISVC)

    too_much = canary_cli(cluster, namespace, "set-weight", ISVC, "150")
    assert too_much.returncode == 2 and "weight 150 is not from 0 to 100" in too_much.stderr
    assert spec_generation(cluster, namespace, ISVC) == before

    # A second writer adds its own canary at 50%: ours at 60 would push the sum over 100. The tool
    # drives one canary and says so before the API server sees anything.
    isvc = cluster.get("inferenceservice", ISVC, namespace)
    assert isvc is not None
    containers = isvc["spec"]["canary"][0]["predictor"]["containers"]
    other = {"trafficPercent": 50, "predictor": {"name": "v3", "containers": containers}}
    add = [{"op": "add", "path": "/spec/canary/-", "value": other}]
    cluster.kubectl("patch", "inferenceservice", ISVC, "-n", namespace, "--type=json", "-p", json.dumps(add))
    before = spec_generation(cluster, namespace, ISVC)
    two = canary_cli(cluster, namespace, "set-weight", ISVC, "60")
    assert two.returncode == 2 and "has 2 canaries ['v2', 'v3']; servekit-canary drives one" in two.stderr
    assert spec_generation(cluster, namespace, ISVC) == before


def test_an_api_refusal_exits_2_with_the_servers_words(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """A user who may only read: the API server refuses the write (RBAC), in one line on stderr."""
    start_stable(cluster, namespace, ISVC)
    reader = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "reader"}, "rules": [
            {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
        ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "reader"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
         "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]},
    ]  # fmt: skip
    cluster.apply(reader, namespace)
    kubeconfig = token_kubeconfig(cluster, namespace, "reader", tmp_path / "reader.kubeconfig")
    assert (
        json_of(canary_cli(cluster, namespace, "status", ISVC, "-o", "json", kubeconfig=kubeconfig))["stable"] == "v1"
    )
    before = spec_generation(cluster, namespace, ISVC)
    refused = canary_cli(
        cluster, namespace, "start", ISVC, "--name", "v2", "--storage-uri", V2_URI, kubeconfig=kubeconfig
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        f"servekit-canary: error: writing ConfigMap {namespace}/{ISVC}-canary-history: HTTP 403"
    )
    assert 'configmaps is forbidden: User "system:serviceaccount:' in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    assert spec_generation(cluster, namespace, ISVC) == before


def test_two_writers_conflict_and_the_change_is_redone_on_a_fresh_read(cluster: Cluster, namespace: str) -> None:
    """A real 409 from the API server: another writer changes the object between the tool's read
    and its write; the tool reads again and applies its change on top of the other writer's."""
    start_stable(cluster, namespace, ISVC)
    ok(canary_cli(cluster, namespace, "start", ISVC, "--name", "v2", "--storage-uri", V2_URI, "--weight", "10"))
    store = KubeInferenceServices(api_client(str(cluster.kubeconfig)))
    seen: list[dict[str, Any]] = []

    def set_weight_racing(obj: dict[str, Any]) -> dict[str, Any]:
        seen.append(obj)
        if len(seen) == 1:  # the other writer, between this read and this write
            cluster.kubectl("label", "inferenceservice", ISVC, "-n", namespace, "team=other-writer")
        return canary_spec.set_weight(obj, 30)

    written = store.update(namespace, ISVC, set_weight_racing)
    assert len(seen) == 2, "the first write must have met a 409 and been redone"
    assert seen[1]["metadata"]["labels"]["team"] == "other-writer", "the retry read the object again"
    assert written["spec"]["canary"][0]["trafficPercent"] == 30
    assert written["metadata"]["labels"]["team"] == "other-writer", "the other writer's change is kept"


def test_concurrent_processes_each_land_once(cluster: Cluster, namespace: str) -> None:
    """Four `set-weight` processes at once: each exits 0, none is lost in the history (whose
    ConfigMap writes conflict too), and one of them is the weight that stays."""
    start_stable(cluster, namespace, ISVC)
    ok(canary_cli(cluster, namespace, "start", ISVC, "--name", "v2", "--storage-uri", V2_URI, "--weight", "10"))
    weights = [21, 22, 23, 24]
    with ThreadPoolExecutor(len(weights)) as pool:
        results: list[subprocess.CompletedProcess[str]] = list(
            pool.map(lambda w: canary_cli(cluster, namespace, "set-weight", ISVC, str(w)), weights)
        )
    for result in results:
        ok(result)
    entries = json.loads(history_config_map(cluster, namespace, ISVC)["data"]["history.json"])
    assert [e["revision"] for e in entries] == list(range(1, 7)), "revisions are unique and consecutive"
    recorded = [e["canary"][0]["trafficPercent"] for e in entries if e["action"] == "set-weight"]
    assert sorted(recorded) == weights
    final = cluster.get("inferenceservice", ISVC, namespace)
    assert final is not None and final["spec"]["canary"][0]["trafficPercent"] in weights
