"""The InferenceService check is strict: it rejects what the API server would silently prune."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.k8s_checks import ISVC_CRD_FILE, ObjectValidator, ReferenceMissing, isvc_schema, load_reference

VALID: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "iris", "annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
    "spec": {
        "predictor": {
            "minReplicas": 1,
            "containers": [
                {
                    "name": "kserve-container",
                    "image": "servekit/predictor:0.1.0",
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}},
                }
            ],
        }
    },
}


def with_change(path: list[str | int], key: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(VALID)
    node: Any = obj
    for step in path:
        node = node[step]
    node[key] = value
    return obj


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    try:
        return load_reference(ISVC_CRD_FILE)
    except ReferenceMissing as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)


def test_valid_inference_service_passes(object_validator: ObjectValidator) -> None:
    assert object_validator.problems(VALID) == []


def test_typo_in_predictor_field_is_rejected(object_validator: ObjectValidator, crd: dict[str, Any]) -> None:
    typo = with_change(["spec", "predictor"], "minReplica", 2)
    # The CRD as published lets the typo through; the strict copy does not.
    jsonschema.Draft7Validator(isvc_schema(crd, strict=False)).validate(typo)
    problems = object_validator.problems(typo)
    assert problems and "'minReplica' was unexpected" in problems[0]


def test_typo_in_container_field_is_rejected(object_validator: ObjectValidator) -> None:
    typo = with_change(["spec", "predictor", "containers", 0], "imagePullPolicyy", "Always")
    assert any("'imagePullPolicyy' was unexpected" in p for p in object_validator.problems(typo))


def test_unknown_top_level_spec_field_is_rejected(object_validator: ObjectValidator) -> None:
    typo = with_change(["spec"], "canaries", [])
    assert any("'canaries' was unexpected" in p for p in object_validator.problems(typo))


def test_wrong_type_and_range_are_rejected(object_validator: ObjectValidator) -> None:
    assert object_validator.problems(with_change(["spec", "predictor"], "minReplicas", "one"))
    canary = with_change(["spec"], "canary", [{"trafficPercent": 120, "predictor": {"name": "v2"}}])
    assert any("120 is greater than the maximum of 100" in p for p in object_validator.problems(canary))


def test_free_form_maps_stay_open(object_validator: ObjectValidator) -> None:
    labelled = with_change(["spec", "predictor"], "labels", {"team": "ml", "app.kubernetes.io/name": "servekit"})
    assert object_validator.problems(labelled) == []


def test_metadata_is_checked_too(object_validator: ObjectValidator) -> None:
    assert object_validator.problems(with_change(["metadata"], "name", "Iris_Model"))
    assert object_validator.problems(with_change(["metadata"], "labelz", {}))


def test_missing_reference_fails_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ReferenceMissing) as raised:
        ObjectValidator.from_reference(tmp_path / "nowhere")
    message = str(raised.value)
    assert "KSERVE_CRD_DIR" in message and "hack/fetch-kserve-crds.sh" in message and ISVC_CRD_FILE in message
