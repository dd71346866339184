"""The inputs hack/e2e.sh deploys, checked without a cluster: the chart rendered with each phase's
values (as hack/deploy.sh passes them) is valid for KServe v0.20 and does what the phase means,
and the model-store Job fills the PVC the canary reads from."""

from __future__ import annotations

import copy
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from tests.e2e.fake_cluster import merge
from tests.e2e.harness import DEPLOY_IMAGE_VALUES, E2E_SCRIPT, MODEL_STORE, VALUES_DIR, script_constant
from tests.support.k8s_checks import (
    KUBERNETES_VERSION,
    ObjectValidator,
    pod_policy_problems,
    pod_templates,
)

RELEASE = script_constant(E2E_SCRIPT, "RELEASE")
NAMESPACE = script_constant(E2E_SCRIPT, "NAMESPACE")
IMAGE = script_constant(E2E_SCRIPT, "IMAGE")
PHASES = {
    "stable": ["kind.yaml"],
    "canary": ["kind.yaml", "canary.yaml"],
    "promoted": ["kind.yaml", "promote.yaml"],
}


def render_phase(chart: helm_python.Chart, phase: str) -> list[dict[str, Any]]:
    values: dict[str, Any] = {}
    for name in PHASES[phase]:
        merge(values, yaml.safe_load((VALUES_DIR / name).read_text()) or {})
    merge(values, copy.deepcopy(DEPLOY_IMAGE_VALUES))
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [
        doc
        for template, text in sorted(manifests.items())
        if not template.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def isvc_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (isvc,) = [obj for obj in objects if obj["kind"] == "InferenceService"]
    return isvc


def env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container.get("env", [])}


@pytest.mark.parametrize("phase", PHASES)
def test_every_phase_renders_valid_objects(
    chart: helm_python.Chart, object_validator: ObjectValidator, phase: str
) -> None:
    objects = render_phase(chart, phase)
    problems = [p for obj in objects for p in object_validator.problems(obj)]
    problems += [p for obj in objects for pod in pod_templates(obj) for p in pod_policy_problems(pod)]
    assert not problems, "\n".join(problems)
    for pod in (pod for obj in objects for pod in pod_templates(obj)):
        for container in pod.spec["containers"]:
            assert container["image"] == IMAGE, f"{pod.where}: runs {container['image']}, e2e loads {IMAGE}"
            assert container["imagePullPolicy"] == "Never", f"{pod.where}: kind has no registry to pull from"


def test_stable_phase_serves_the_model_baked_into_the_image(chart: helm_python.Chart) -> None:
    isvc = isvc_of(render_phase(chart, "stable"))
    assert isvc["metadata"]["name"] == f"{RELEASE}-servekit"
    assert "name" not in isvc["spec"]["predictor"]
    container = isvc["spec"]["predictor"]["containers"][0]
    assert "STORAGE_URI" not in env(container)
    assert env(container)["PREDICTOR_MODEL_DIR"] == "/opt/servekit/models/iris"


def test_canary_phase_runs_version_2_next_to_version_1_from_the_model_store(chart: helm_python.Chart) -> None:
    spec = isvc_of(render_phase(chart, "canary"))["spec"]
    assert spec["predictor"]["name"] == "v1"
    assert env(spec["predictor"]["containers"][0])["STORAGE_URI"] == "pvc://servekit-models/iris/v1"
    (canary,) = spec["canary"]
    assert canary["predictor"]["name"] == script_constant(E2E_SCRIPT, "CANARY_NAME")
    assert canary["trafficPercent"] == int(script_constant(E2E_SCRIPT, "CANARY_PERCENT"))
    assert canary["predictor"]["minReplicas"] <= spec["predictor"]["minReplicas"], "a KServe rule"
    container = canary["predictor"]["containers"][0]
    assert env(container)["STORAGE_URI"] == "pvc://servekit-models/iris/v2"
    assert env(container)["PREDICTOR_MODEL_DIR"] == "/mnt/models"


def test_promoted_phase_has_version_2_as_the_only_predictor(chart: helm_python.Chart) -> None:
    spec = isvc_of(render_phase(chart, "promoted"))["spec"]
    assert spec["predictor"]["name"] == script_constant(E2E_SCRIPT, "CANARY_NAME")
    assert env(spec["predictor"]["containers"][0])["STORAGE_URI"] == "pvc://servekit-models/iris/v2"
    assert "canary" not in spec


def model_store() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MODEL_STORE.read_text()) if doc]


def test_model_store_is_valid_and_restricted() -> None:
    objects = model_store()
    assert [obj["kind"] for obj in objects] == ["PersistentVolumeClaim", "Job"]
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    problems = [p for obj in objects for pod in pod_templates(obj) for p in pod_policy_problems(pod)]
    assert not problems, "\n".join(problems)


def test_model_store_writes_where_the_canary_values_read(chart: helm_python.Chart) -> None:
    claim, job = model_store()
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["imagePullPolicy"] == "Never"
    (volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    script = container["args"][0]
    spec = isvc_of(render_phase(chart, "canary"))["spec"]
    uris = [env(spec["predictor"]["containers"][0])["STORAGE_URI"]]
    uris += [env(c["predictor"]["containers"][0])["STORAGE_URI"] for c in spec["canary"]]
    for uri in uris:
        claim_name, _, path = uri.removeprefix("pvc://").partition("/")
        assert claim_name == claim["metadata"]["name"]
        directory, version = path.rsplit("/v", 1)
        assert f"{mount['mountPath']}/{directory}" in script, f"the Job does not write {uri}"
        assert f'"{version}"' in script, f"the Job writes no model version {version}"
