"""Build every kustomize overlay with `kubectl kustomize` and check what `kubectl apply -k` sends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from tests.support.k8s_checks import (
    ObjectValidator,
    env_of,
    labels_match,
    pod_policy_problems,
    pod_templates,
    predictor_containers,
)
from tests.support.rendering import KUSTOMIZATIONS, MANIFESTS_DIR, render

Build = Callable[[Path], list[dict[str, Any]]]
IDS = [path.name for path in KUSTOMIZATIONS]
EXPECTED_OVERLAYS = {
    "standard-hpa", "standard-keda", "knative-kpa", "gpu", "knative-canary", "standard-canary", "payload-logging",
    "istio-auth",
}  # fmt: skip
BASE_KINDS = {"InferenceService", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy"}
EXTRA_KINDS = {"istio-auth": {"PeerAuthentication", "AuthorizationPolicy"}}


def overlay(name: str) -> Path:
    return MANIFESTS_DIR / "overlays" / name


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def test_every_scenario_has_an_overlay() -> None:
    assert {path.name for path in KUSTOMIZATIONS} == {"base"} | EXPECTED_OVERLAYS


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_overlay_builds_into_valid_objects(
    directory: Path, build_overlay: Build, object_validator: ObjectValidator
) -> None:
    objects = build_overlay(directory)
    assert {obj["kind"] for obj in objects} == BASE_KINDS | EXTRA_KINDS.get(directory.name, set())
    problems = [problem for obj in objects for problem in object_validator.problems(obj)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_overlay_pod_templates_follow_policy(directory: Path, build_overlay: Build) -> None:
    pods = [pod for obj in build_overlay(directory) for pod in pod_templates(obj)]
    assert pods
    problems = [problem for pod in pods for problem in pod_policy_problems(pod)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_overlay_wiring(directory: Path, build_overlay: Build) -> None:
    objects = build_overlay(directory)
    service = one(objects, "InferenceService")
    account = one(objects, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    for pod in pod_templates(service):
        assert pod.spec["serviceAccountName"] == account["metadata"]["name"], pod.where
        for selector in (
            one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
            one(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        ):
            assert labels_match(selector, pod.spec["labels"]), f"{selector} misses {pod.where}"
    for where, container in predictor_containers(service):
        env = env_of(container)
        expected_dir = "/mnt/models" if "STORAGE_URI" in env else "/opt/servekit/models/iris"
        assert env["PREDICTOR_MODEL_DIR"] == expected_dir, where
        assert ":" in container["image"].rsplit("/", 1)[-1], f"{where}: image {container['image']} has no tag"


def test_base_is_standard_mode_with_fixed_replicas(build_overlay: Build) -> None:
    service = one(build_overlay(MANIFESTS_DIR / "base"), "InferenceService")
    assert service["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "Standard",
        "serving.kserve.io/autoscalerClass": "none",
    }


def test_standard_hpa_overlay(build_overlay: Build) -> None:
    service = one(build_overlay(overlay("standard-hpa")), "InferenceService")
    assert service["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    spec = service["spec"]["predictor"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 6)
    (metric,) = spec["autoScaling"]["metrics"]
    assert metric["resource"] == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}


def test_standard_keda_overlay_scales_on_requests_per_second(build_overlay: Build) -> None:
    service = one(build_overlay(overlay("standard-keda")), "InferenceService")
    assert service["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
    (metric,) = service["spec"]["predictor"]["autoScaling"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["backend"] == "prometheus"
    assert metric["external"]["metric"]["query"].startswith("sum(rate(servekit_requests_total{")
    assert metric["external"]["target"]["value"] == "20"


@pytest.mark.parametrize("name", ["knative-kpa", "knative-canary"])
def test_knative_overlays_scale_to_zero_with_the_kpa(name: str, build_overlay: Build) -> None:
    service = one(build_overlay(overlay(name)), "InferenceService")
    assert service["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "Knative"}
    spec = service["spec"]["predictor"]
    assert (spec["minReplicas"], spec["scaleMetric"]) == (0, "concurrency")
    # Knative's defaults reject a pod securityContext; the container carries the restrictions.
    assert "securityContext" not in spec
    assert [port["name"] for port in spec["containers"][0]["ports"]] == ["http1"]


def test_gpu_overlay(build_overlay: Build) -> None:
    spec = one(build_overlay(overlay("gpu")), "InferenceService")["spec"]["predictor"]
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in container["resources"]["requests"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert container["image"].endswith("-cuda")
    assert env_of(container)["PREDICTOR_DEVICE"] == "cuda"
    assert env_of(container)["PREDICTOR_WORKERS"] == "4"


def test_knative_canary_overlay(build_overlay: Build) -> None:
    spec = one(build_overlay(overlay("knative-canary")), "InferenceService")["spec"]
    assert spec["predictor"]["canaryTrafficPercent"] == 10
    assert "canary" not in spec
    assert spec["predictor"]["containers"][0]["image"] == "servekit/predictor:0.2.0"


def test_standard_canary_overlay_meets_kserves_rules(build_overlay: Build) -> None:
    service = one(build_overlay(overlay("standard-canary")), "InferenceService")
    assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    spec = service["spec"]
    assert "canaryTrafficPercent" not in spec["predictor"]
    (canary,) = spec["canary"]
    assert 0 <= canary["trafficPercent"] <= 100
    assert canary["predictor"]["name"] != spec["predictor"]["name"]
    assert "STORAGE_URI" in env_of(spec["predictor"]["containers"][0]), "KServe needs a stable model URI"
    assert not {"maxReplicas", "autoScaling", "scaleMetric", "scaleTarget"} & set(canary["predictor"])


def test_manifests_and_chart_deploy_the_same_predictor(build_overlay: Build, chart: helm_python.Chart) -> None:
    base = one(build_overlay(MANIFESTS_DIR / "base"), "InferenceService")
    chart_isvc = render(chart).one("InferenceService")
    (_, from_manifests), (_, from_chart) = next(predictor_containers(base)), next(predictor_containers(chart_isvc))
    for field in (
        "image",
        "ports",
        "readinessProbe",
        "livenessProbe",
        "startupProbe",
        "securityContext",
        "volumeMounts",
    ):
        assert from_manifests[field] == from_chart[field], field
    assert env_of(from_manifests)["PREDICTOR_MODEL_DIR"] == env_of(from_chart)["PREDICTOR_MODEL_DIR"]
    assert base["spec"]["predictor"]["securityContext"] == chart_isvc["spec"]["predictor"]["securityContext"]


def test_kustomizations_reference_only_existing_files() -> None:
    for directory in KUSTOMIZATIONS:
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        paths = kustomization.get("resources", []) + [
            p["path"] for p in kustomization.get("patches", []) if "path" in p
        ]
        for path in paths:
            assert (directory / path).exists(), f"{directory.name}: {path} does not exist"


def test_payload_logging_overlay_uses_kserves_logger(build_overlay: Build) -> None:
    objects = build_overlay(overlay("payload-logging"))
    logger = one(objects, "InferenceService")["spec"]["predictor"]["logger"]
    assert logger == {
        "mode": "all",
        "url": "http://payload-sink.observability.svc.cluster.local",
        "metadataHeaders": ["x-request-id"],
    }
    # The agent's port 9081 is open: the base NetworkPolicy restricts sources, not ports.
    assert all("ports" not in rule for rule in one(objects, "NetworkPolicy")["spec"]["ingress"])


def test_istio_auth_overlay_locks_the_predictor_down(build_overlay: Build) -> None:
    objects = build_overlay(overlay("istio-auth"))
    service = one(objects, "InferenceService")
    assert service["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local"
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "servekit"  # the base labels stay
    (pod,) = pod_templates(service)
    (_, container) = next(predictor_containers(service))
    assert env_of(container)["PREDICTOR_AUTH_TOKEN_FILE"] == "/var/run/secrets/servekit/auth/token"
    assert {"name": "auth-token", "mountPath": "/var/run/secrets/servekit/auth", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert {"name": "auth-token", "secret": {"secretName": "iris-predictor-token", "defaultMode": 0o444}} in pod.spec[
        "volumes"
    ]
    for kind in ("PeerAuthentication", "AuthorizationPolicy"):
        assert labels_match(one(objects, kind)["spec"]["selector"]["matchLabels"], pod.spec["labels"]), kind
    assert one(objects, "PeerAuthentication")["spec"]["mtls"]["mode"] == "STRICT"
