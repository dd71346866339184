"""Checks of what KServe made from an InferenceService we installed, shared by the chart and the
overlay tests: the predictor Deployment carries our container and pod settings, the autoscaler
has our targets, the HTTPRoute is accepted by the gateway, and our PDB, NetworkPolicy and
ServiceMonitor select the pods that really run."""

from __future__ import annotations

from typing import Any

from tests.cluster.cluster import ISVC_LABEL, Cluster
from tests.support.k8s_checks import kserve_canary_predictor

PREDICTOR_CONTAINER = "kserve-container"
# KServe's label that keeps an InferenceService off the ingress gateway (no HTTPRoute).
VISIBILITY_LABEL = "networking.kserve.io/visibility"
EMPTY_DEPLOYMENT: dict[str, Any] = {"metadata": {"name": "(missing)"}, "spec": {"template": {"spec": {}}}}
# The fields of our container that KServe must carry over into its Deployment as we wrote them.
CONTAINER_FIELDS = (
    "image",
    "args",
    "env",
    "ports",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
    "resources",
    "securityContext",
    "volumeMounts",
)
POD_FIELDS = (
    "securityContext",
    "serviceAccountName",
    "automountServiceAccountToken",
    "nodeSelector",
    "tolerations",
    "imagePullSecrets",
    "topologySpreadConstraints",
    "volumes",
)


def mismatches(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Where `actual` differs from `expected`, ignoring what the API server or KServe added:
    extra keys in maps, extra entries in lists of named items (env, volumes, ports)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected a map, got {actual!r}"]
        problems = []
        for key, value in expected.items():
            problems += mismatches(value, actual.get(key), f"{where}.{key}")
        return problems
    if isinstance(expected, list) and all(isinstance(item, dict) and "name" in item for item in expected):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {actual!r}"]
        by_name = {item.get("name"): item for item in actual if isinstance(item, dict)}
        problems = []
        for item in expected:
            problems += mismatches(item, by_name.get(item["name"]), f"{where}[{item['name']}]")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {expected!r}, got {actual!r}"]
        problems = []
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            problems += mismatches(want, got, f"{where}[{index}]")
        return problems
    # Quantities and ports may come back as strings where we wrote numbers ("2" for 2).
    if expected != actual and str(expected) != str(actual):
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    return []


def container_named(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in pod_spec.get("containers", []) if c["name"] == name]
    assert found, f"no container {name!r} in {[c['name'] for c in pod_spec.get('containers', [])]}"
    return dict(found[0])


def deployment_problems(deployment: dict[str, Any], predictor: dict[str, Any]) -> list[str]:
    """Where KServe's Deployment differs from the predictor we wrote: our container's fields and
    our pod settings."""
    pod_spec = deployment["spec"]["template"]["spec"]
    ours = container_named(predictor, PREDICTOR_CONTAINER)
    name = deployment["metadata"]["name"]
    found = [c for c in pod_spec.get("containers", []) if c["name"] == PREDICTOR_CONTAINER]
    if not found:
        return [f"{name}: no container {PREDICTOR_CONTAINER!r}"]
    theirs = found[0]
    problems = []
    for field in CONTAINER_FIELDS:
        if field in ours:
            problems += mismatches(ours[field], theirs.get(field), f"{name} container.{field}")
    for field in POD_FIELDS:
        if field in predictor:
            problems += mismatches(predictor[field], pod_spec.get(field), f"{name} pod.{field}")
    return problems


def canary_replicas(isvc: dict[str, Any], entry: dict[str, Any]) -> int:
    """KServe's replicas for a canary: its minReplicas, else ceil(stable minReplicas x percent / 100)."""
    if "minReplicas" in entry["predictor"]:
        return int(entry["predictor"]["minReplicas"])
    stable = isvc["spec"]["predictor"].get("minReplicas", 1)
    return -(-stable * entry["trafficPercent"] // 100)


def stable_min_replicas(isvc: dict[str, Any]) -> int:
    """KServe shrinks the stable predictor's floor by the canaries' replicas, to at least 1."""
    minimum = int(isvc["spec"]["predictor"]["minReplicas"])
    canaries = isvc["spec"].get("canary", [])
    if not canaries:
        return minimum
    return max(minimum - sum(canary_replicas(isvc, entry) for entry in canaries), 1)


def check_autoscaler(cluster: Cluster, namespace: str, isvc: dict[str, Any], deployment: str) -> None:
    """The HPA or KEDA ScaledObject KServe made has our replicas and metric targets."""
    predictor = isvc["spec"]["predictor"]
    annotations = isvc["metadata"].get("annotations", {})
    autoscaler = annotations.get("serving.kserve.io/autoscalerClass", "hpa")
    metrics = predictor.get("autoScaling", {}).get("metrics", [])
    if autoscaler == "hpa":
        hpa = cluster.get("hpa", deployment, namespace)
        assert hpa is not None, f"no HorizontalPodAutoscaler {deployment}"
        assert hpa["spec"]["minReplicas"] == stable_min_replicas(isvc)
        assert hpa["spec"]["maxReplicas"] == predictor["maxReplicas"]
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment
        (metric,) = metrics
        (hpa_metric,) = hpa["spec"]["metrics"]
        assert hpa_metric["resource"]["name"] == metric["resource"]["name"]
        assert hpa_metric["resource"]["target"] == metric["resource"]["target"]
    elif autoscaler == "keda":
        scaled = cluster.get("scaledobject", deployment, namespace)
        assert scaled is not None, f"no KEDA ScaledObject {deployment}"
        assert scaled["spec"]["scaleTargetRef"]["name"] == deployment
        assert scaled["spec"]["minReplicaCount"] == stable_min_replicas(isvc)
        assert scaled["spec"]["maxReplicaCount"] == predictor["maxReplicas"]
        (metric,) = metrics
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "prometheus"
        assert trigger["metadata"]["query"] == metric["external"]["metric"]["query"]
        assert trigger["metadata"]["serverAddress"] == metric["external"]["metric"]["serverAddress"]
        assert trigger["metadata"]["threshold"] == str(metric["external"]["target"]["value"])
    else:
        assert cluster.get("hpa", deployment, namespace) is None
        assert cluster.get("scaledobject", deployment, namespace) is None


def owned_by_isvc(obj: dict[str, Any], isvc: str) -> bool:
    return any(
        ref.get("kind") == "InferenceService" and ref.get("name") == isvc and ref.get("controller")
        for ref in obj["metadata"].get("ownerReferences", [])
    )


def isvc_routes(cluster: Cluster, namespace: str, isvc: str) -> list[dict[str, Any]]:
    """The HTTPRoutes KServe made for an InferenceService (they carry our labels, not KServe's)."""
    return [route for route in cluster.list("httproutes", namespace) if owned_by_isvc(route, isvc)]


def route_accepted(route: dict[str, Any]) -> bool:
    """The gateway (servekit-gateway) accepted the route on every parent Gateway (what KServe waits for)."""
    parents = route.get("status", {}).get("parents", [])
    return bool(parents) and all(
        any(c["type"] == "Accepted" and c["status"] == "True" for c in parent.get("conditions", []))
        for parent in parents
    )


VISIBILITY_LABEL = "networking.kserve.io/visibility"


def check_cluster_local(cluster: Cluster, namespace: str, isvc: dict[str, Any]) -> None:
    """`networking.kserve.io/visibility: cluster-local` keeps the model off the gateway: KServe makes
    no HTTPRoute for it (v0.20.0 still writes the external-style `status.url`; callers inside the
    cluster use `status.address.url`, the predictor Service's cluster address)."""
    name = isvc["metadata"]["name"]
    routes = [route["metadata"]["name"] for route in isvc_routes(cluster, namespace, name)]
    assert routes == [], f"{name} is cluster-local, yet KServe routed it from the gateway: {routes}"
    address = isvc["status"].get("address", {}).get("url", "")
    assert ".svc.cluster.local" in address, f"{name}'s status.address.url is {address!r}, not a cluster address"


def check_routes(cluster: Cluster, namespace: str, isvc: str, deployment: str) -> list[dict[str, Any]]:
    """KServe's HTTPRoutes hang off KServe's Gateway, are accepted by the gateway and send every
    request to the stable predictor's Service (named as its Deployment)."""
    routes = isvc_routes(cluster, namespace, isvc)
    assert routes, f"KServe made no HTTPRoute for {isvc}"
    for route in routes:
        parents = [(ref.get("namespace"), ref["name"]) for ref in route["spec"]["parentRefs"]]
        assert parents == [("kserve", "kserve-ingress-gateway")], parents
        assert route_accepted(route), route.get("status")
    backends = {ref["name"] for route in routes for rule in route["spec"]["rules"] for ref in rule["backendRefs"]}
    assert backends == {deployment}, f"the routes of {isvc} send traffic to {backends}, not to {deployment}"
    return routes


def predictor_pods(cluster: Cluster, namespace: str, isvc: str) -> list[dict[str, Any]]:
    return cluster.list("pods", namespace, f"{ISVC_LABEL}={isvc},component=predictor")


def selector_string(match_labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in match_labels.items())


ISTIO_POLICY_KINDS = {"PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication"}


def check_policies(cluster: Cluster, namespace: str, isvc: str, rendered: list[dict[str, Any]]) -> None:
    """The PDB, NetworkPolicy, Istio policies and ServiceMonitor we rendered exist and select the
    predictor's real pods (the metrics Service through its endpoints)."""
    pods = {pod["metadata"]["name"] for pod in predictor_pods(cluster, namespace, isvc)}
    for obj in rendered:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind == "PodDisruptionBudget":
            selected = cluster.names("pods", namespace, selector_string(obj["spec"]["selector"]["matchLabels"]))
            assert set(selected) == pods, f"PDB {name} selects {selected}, the predictor runs {sorted(pods)}"
            cluster.wait_until(
                lambda name=name: (
                    (cluster.get("pdb", name, namespace) or {}).get("status", {}).get("expectedPods") == len(pods)
                ),
                30,
                f"the disruption controller to count the pods of PDB {name}",
            )
        elif kind == "NetworkPolicy":
            selected = cluster.names("pods", namespace, selector_string(obj["spec"]["podSelector"]["matchLabels"]))
            assert set(selected) == pods, f"NetworkPolicy {name} selects {selected}, not {sorted(pods)}"
            assert cluster.get("networkpolicy", name, namespace) is not None
        elif kind in ISTIO_POLICY_KINDS:
            stored = cluster.get(kind.lower() + ".security.istio.io", name, namespace)
            assert stored is not None, f"no {kind} {name}: the API server did not keep it"
            labels = stored["spec"].get("selector", {}).get("matchLabels", {})
            selected = cluster.names("pods", namespace, selector_string(labels))
            assert set(selected) == pods, f"{kind} {name} selects {selected}, the predictor runs {sorted(pods)}"
        elif kind == "ServiceMonitor":
            assert cluster.get("servicemonitor", name, namespace) is not None, f"no ServiceMonitor {name}"
            services = cluster.list("services", namespace, selector_string(obj["spec"]["selector"]["matchLabels"]))
            assert services, f"ServiceMonitor {name} selects no Service"
            for service in services:
                check_service_endpoints(cluster, namespace, service["metadata"]["name"], len(pods))


def check_gpu_placement(cluster: Cluster, namespace: str, isvc: str, predictor: dict[str, Any]) -> None:
    """A predictor with GPUs in its limits runs on nodes that have them (the scheduler honoured our
    resources, nodeSelector and toleration of the GPU taint)."""
    limits = container_named(predictor, PREDICTOR_CONTAINER).get("resources", {}).get("limits", {})
    gpus = [resource for resource in limits if resource.endswith("/gpu")]
    if not gpus:
        return
    nodes = {node["metadata"]["name"]: node for node in cluster.list("nodes", None)}
    for pod in predictor_pods(cluster, namespace, isvc):
        node = nodes[pod["spec"]["nodeName"]]
        assert all(gpu in node["status"]["allocatable"] for gpu in gpus), (
            f"pod {pod['metadata']['name']} asks for {gpus} but runs on {node['metadata']['name']}"
        )


def check_service_endpoints(cluster: Cluster, namespace: str, service: str, pods: int) -> None:
    def ready_addresses() -> int:
        slices = cluster.list("endpointslices", namespace, f"kubernetes.io/service-name={service}")
        return sum(1 for s in slices for e in s.get("endpoints") or [] if e.get("conditions", {}).get("ready") is True)

    cluster.wait_until(lambda: ready_addresses() == pods, 30, f"Service {service} to have {pods} ready endpoints")


def the_one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def predictors_by_deployment(ours: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Deployment name -> the predictor spec KServe runs in it (canaries: stable + overrides)."""
    name, stable = ours["metadata"]["name"], ours["spec"]["predictor"]
    stable_name = f"{name}-{stable['name']}-predictor" if stable.get("name") else f"{name}-predictor"
    predictors = {stable_name: stable}
    for entry in ours["spec"].get("canary", []):
        predictors[f"{name}-{entry['predictor']['name']}-predictor"] = kserve_canary_predictor(
            stable, entry["predictor"]
        )
    return predictors


def check_reconciled(cluster: Cluster, namespace: str, rendered: list[dict[str, Any]]) -> dict[str, Any]:
    """KServe made Ready what we rendered: its Deployments carry our predictors, the autoscaler,
    routes and policies are as we asked."""
    ours = the_one(rendered, "InferenceService")
    name = ours["metadata"]["name"]
    predictors = predictors_by_deployment(ours)

    def carried(_: dict[str, Any], deployments: dict[str, dict[str, Any]]) -> bool:
        return set(deployments) == set(predictors) and not any(
            deployment_problems(deployments[d], predictors[d]) for d in predictors
        )

    try:
        isvc = cluster.wait_for_isvc(namespace, name, caught_up=carried)
    except AssertionError as error:
        deployments = {d["metadata"]["name"]: d for d in cluster.isvc_deployments(namespace, name)}
        problems = [
            p for d in predictors for p in deployment_problems(deployments.get(d, EMPTY_DEPLOYMENT), predictors[d])
        ]
        raise AssertionError(f"{error}\nKServe's Deployments differ from ours:\n" + "\n".join(problems)) from None
    stable = next(iter(predictors))
    check_autoscaler(cluster, namespace, ours, stable)
    if ours["metadata"].get("labels", {}).get(VISIBILITY_LABEL) == "cluster-local":
        check_cluster_local(cluster, namespace, isvc)
    else:
        check_routes(cluster, namespace, name, stable)
    check_policies(cluster, namespace, name, rendered)
    check_gpu_placement(cluster, namespace, name, ours["spec"]["predictor"])
    return isvc
