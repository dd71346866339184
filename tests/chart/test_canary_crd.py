"""The CanaryAnalysis CRD, the controller's manifests, and their agreement with the canary tool.

The CRD is written once, in helm/servekit/crds (manifests/crd has a generated copy, checked in
test_generated_manifests.py); the analysis fields are spelled three times (the CRD, the chart's
values schema, the tool's pydantic model). These tests hold them together.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from predictor.canary import controller
from predictor.canary.spec import CanaryAnalysisSpec
from predictor.canary.state import Phase, RolloutState
from tests.support.k8s_checks import (
    CANARY_CRD,
    KUBERNETES_VERSION,
    ObjectValidator,
    canary_analysis_schema,
    make_strict,
    openapi_to_jsonschema,
    pod_policy_problems,
    pod_templates,
)
from tests.support.rendering import CHART_DIR, MANIFESTS_DIR

Build = Callable[[Path], list[dict[str, Any]]]
CONTROLLER_DIR = MANIFESTS_DIR / "canary-controller"


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CANARY_CRD.read_text())
    return loaded


def version(crd: dict[str, Any]) -> dict[str, Any]:
    (only,) = crd["spec"]["versions"]
    return dict(only)


def nodes(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(schema, dict):
        return
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def test_crd_is_a_valid_custom_resource_definition(crd: dict[str, Any]) -> None:
    kubernetes_validate.validate(crd, KUBERNETES_VERSION, strict=True)


def test_names_follow_the_contract(crd: dict[str, Any]) -> None:
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == ("servekit.dev", "Namespaced")
    assert spec["names"]["kind"] == "CanaryAnalysis" and spec["names"]["plural"] == "canaryanalyses"
    assert spec["names"]["shortNames"] == ["skcanary"]
    assert version(crd)["name"] == "v1alpha1" and version(crd)["subresources"] == {"status": {}}


def test_schema_is_structural(crd: dict[str, Any]) -> None:
    schema = version(crd)["schema"]["openAPIV3Schema"]
    untyped = [path or "." for path, node in nodes(schema) if "type" not in node]
    assert not untyped, f"structural schemas type every node: {untyped}"
    assert "x-kubernetes-preserve-unknown-fields" not in str(schema)


def test_printer_columns_show_phase_weight_and_the_inference_service(crd: dict[str, Any]) -> None:
    columns = {column["name"]: column["jsonPath"] for column in version(crd)["additionalPrinterColumns"]}
    assert columns["InferenceService"] == ".spec.inferenceService"
    assert columns["Phase"] == ".status.phase" and columns["Weight"] == ".status.canaryWeight"
    status = version(crd)["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    for path in columns.values():
        parts = path.split(".")
        if parts[1] == "status":
            assert parts[2].split("[")[0] in status, path


def test_spec_fields_are_the_tools_fields(crd: dict[str, Any]) -> None:
    spec = version(crd)["schema"]["openAPIV3Schema"]["properties"]["spec"]
    aliases = {field.alias or name for name, field in CanaryAnalysisSpec.model_fields.items()}
    assert set(spec["properties"]) == aliases
    assert spec["required"] == ["inferenceService"]
    phases = version(crd)["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["phase"]["enum"]
    assert phases == [str(phase) for phase in Phase]


def test_chart_values_schema_is_the_crd_spec(crd: dict[str, Any]) -> None:
    values_schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    analysis = values_schema["properties"]["canaryAnalysis"]["properties"]["spec"]
    expected = copy.deepcopy(version(crd)["schema"]["openAPIV3Schema"]["properties"]["spec"])
    expected["properties"].pop("inferenceService")
    expected.pop("required")
    assert {k: v for k, v in analysis.items() if k != "description"} == make_strict(expected)


NO_DATA = {"passed": False, "checks": [{"name": "p99", "passed": False, "value": None, "detail": "no data"}]}


def test_the_controllers_status_fits_the_schema(object_validator: ObjectValidator) -> None:
    state = RolloutState(
        Phase.PROGRESSING, "v2", "abc", 25, 1, failed_checks=1, iterations=2, confirmed=True, begun=True,
        started_at=1.8e9, next_analysis_at=1.8e9 + 60, last_analysis_at=1.8e9,
        last_analysis=NO_DATA, message="analysis failed", canary_serves="5d41402abc4b2a76",
    )  # fmt: skip
    unset = [f.name for f in dataclasses.fields(state) if getattr(state, f.name) is None]
    assert unset == ["unready_since"], "every field the status can carry, in the object checked"
    obj = {
        "apiVersion": "servekit.dev/v1alpha1",
        "kind": "CanaryAnalysis",
        "metadata": {"name": "iris", "namespace": "models"},
        "spec": {"inferenceService": "iris"},
        "status": controller.status_from_state(state, {}, 3, 1.8e9),
    }
    assert object_validator.problems(obj) == []


def test_the_crd_status_has_a_property_for_every_state_field(crd: dict[str, Any]) -> None:
    # Built from the dataclass, not a list: a field added to RolloutState needs a place in the status
    # schema, or the API server prunes it and a restarted controller forgets it.
    status_schema = version(crd)["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    mapped = controller.STATUS_FIELDS | controller.TIME_FIELDS
    assert sorted(mapped.values()) == sorted(f.name for f in dataclasses.fields(RolloutState))
    assert sorted(set(mapped) - set(status_schema)) == []


def test_strict_schema_refuses_typos(object_validator: ObjectValidator) -> None:
    obj = yaml.safe_load((CONTROLLER_DIR / "canaryanalysis-example.yaml").read_text())
    assert object_validator.problems(obj) == []
    obj["spec"]["treshold"] = 3
    assert any("'treshold' was unexpected" in p for p in object_validator.problems(obj))
    obj = yaml.safe_load((CONTROLLER_DIR / "canaryanalysis-example.yaml").read_text())
    obj["spec"]["steps"] = [10, 200]
    assert any("200 is greater than the maximum of 100" in p for p in object_validator.problems(obj))


def test_latency_limits_must_be_above_zero(object_validator: ObjectValidator) -> None:
    # The tool refuses 0 (gt=0): the API server must too, or the controller only says "invalid spec".
    obj = yaml.safe_load((CONTROLLER_DIR / "canaryanalysis-example.yaml").read_text())
    obj["spec"]["maxP99Ms"] = 0.5
    assert object_validator.problems(obj) == []
    obj["spec"]["maxP99Ms"] = 0
    assert any("less than or equal to the minimum of 0" in p for p in object_validator.problems(obj))


def test_nullable_becomes_a_null_type() -> None:
    assert openapi_to_jsonschema({"type": "number", "nullable": True}) == {"type": ["number", "null"]}
    jsonschema.validate(
        {"value": None},
        canary_analysis_schema()["properties"]["status"]["properties"]["lastAnalysis"]["properties"]["checks"]["items"],
    )


def test_example_analysis_is_read_by_the_tool() -> None:
    obj = yaml.safe_load((CONTROLLER_DIR / "canaryanalysis-example.yaml").read_text())
    spec = CanaryAnalysisSpec.model_validate(obj["spec"])
    assert spec.inference_service == "iris" and spec.weights() == [10, 25, 50] and spec.threshold == 3


# --- manifests/canary-controller -----------------------------------------------------------------------


def test_controller_manifests_build_into_valid_objects(build_overlay: Build, object_validator: ObjectValidator) -> None:
    objects = build_overlay(CONTROLLER_DIR)
    kinds = sorted(obj["kind"] for obj in objects)
    assert kinds == ["CustomResourceDefinition", "Deployment", "Role", "RoleBinding", "ServiceAccount"]
    problems = [problem for obj in objects for problem in object_validator.problems(obj)]
    assert not problems, "\n".join(problems)
    pods = [pod for obj in objects for pod in pod_templates(obj)]
    assert pods and not [problem for pod in pods for problem in pod_policy_problems(pod)]


def test_controller_manifests_bind_the_role_in_one_namespace(build_overlay: Build) -> None:
    objects = {obj["kind"]: obj for obj in build_overlay(CONTROLLER_DIR)}
    binding, deployment = objects["RoleBinding"], objects["Deployment"]
    (subject,) = binding["subjects"]
    assert subject["namespace"] == deployment["metadata"]["namespace"] == objects["Role"]["metadata"]["namespace"]
    assert subject["name"] == deployment["spec"]["template"]["spec"]["serviceAccountName"]
    rules = objects["Role"]["rules"]
    assert {"apiGroups": ["servekit.dev"], "resources": ["canaryanalyses/status"], "verbs": ["get", "patch"]} in rules
    assert all("*" not in rule["verbs"] and "delete" not in rule["verbs"] for rule in rules)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["servekit-canary"] and container["args"][0] == "controller"
    env = {item["name"]: item for item in container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_chart_and_manifests_grant_the_same_kinds_of_access(build_overlay: Build, render_ci: Any) -> None:
    manifest_role = next(obj for obj in build_overlay(CONTROLLER_DIR) if obj["kind"] == "Role")
    chart_role = render_ci(CHART_DIR / "ci" / "standard-canary-values.yaml").one("Role")

    def access(role: dict[str, Any]) -> set[tuple[str, str, str]]:
        return {
            (g, r, v)
            for rule in role["rules"]
            for g in rule["apiGroups"]
            for r in rule["resources"]
            for v in rule["verbs"]
        }

    assert access(manifest_role) == access(chart_role)
