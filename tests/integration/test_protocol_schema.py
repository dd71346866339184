"""Schemathesis against the v2 protocol's OpenAPI document, on both v2 REST routes of a real server.

The document (``rest_predict_v2.yaml`` from $KSERVE_CRD_DIR) writes its paths with ``${MODEL_NAME}``
and ``${MODEL_VERSION}`` placeholders. Two readings of it run: the placeholders filled with the
served model (so generated bodies reach the decoders and the model), and turned into ordinary
path parameters (so names and versions are generated too). Every operation gets a bounded number
of valid and invalid (negative) examples; no answer may be a 5xx, and the server must still be
up afterwards. The lean route's 200 answers to inference must match the document's schema.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support.k8s_checks import V2_REST_SPEC_FILE, ReferenceMissing, load_reference
from tests.support.server import Server

EXAMPLES = {"post": 60, "get": 15}  # per operation and generation mode
MODEL = {"${MODEL_NAME}": "iris", "${MODEL_VERSION}": "1"}


def _document() -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = load_reference(V2_REST_SPEC_FILE)
    except ReferenceMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    return loaded


def _filled(document: dict[str, Any]) -> dict[str, Any]:
    """Placeholders replaced by the served model's name and version; path parameters dropped."""
    filled = copy.deepcopy(document)
    paths = {}
    for template, item in filled["paths"].items():
        for placeholder, value in MODEL.items():
            template = template.replace(placeholder, value)
        item.pop("parameters", None)
        paths[template] = item
    filled["paths"] = paths
    return filled


def _templated(document: dict[str, Any]) -> dict[str, Any]:
    """Placeholders as OpenAPI path parameters: schemathesis generates the names and versions."""
    templated = copy.deepcopy(document)
    templated["paths"] = {path.replace("${", "{"): item for path, item in templated["paths"].items()}
    return templated


READINGS = {"filled": _filled, "templated": _templated}
OPERATIONS = [
    ("get", "/v2/health/live"),
    ("get", "/v2/health/ready"),
    ("get", "/v2/models/{MODEL}/versions/{VERSION}/ready"),
    ("get", "/v2/"),
    ("get", "/v2/models/{MODEL}/versions/{VERSION}"),
    ("post", "/v2/models/{MODEL}/versions/{VERSION}/infer"),
]
# Invalid examples need something that can be invalid: only the inference body can (any string is
# a valid path parameter).
CASES = [
    pytest.param(reading, method, path, mode, id=f"{reading} {method} {path} {mode.value}")
    for reading in READINGS
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode == GenerationMode.POSITIVE or method == "post"
]


def _operation(reading: str, method: str, path: str) -> Any:
    schema = schemathesis.openapi.from_dict(READINGS[reading](_document()))
    if reading == "filled":
        concrete = path.replace("{MODEL}", "iris").replace("{VERSION}", "1")
    else:
        concrete = path.replace("{MODEL}", "{MODEL_NAME}").replace("{VERSION}", "{MODEL_VERSION}")
    return schema[concrete][method]


@pytest.fixture(params=["lean", "kserve"])
def route(request: pytest.FixtureRequest) -> Server:
    server: Server = request.getfixturevalue("iris_server" if request.param == "lean" else "kserve_route_server")
    return server


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("reading", "method", "path", "mode"), CASES)
def test_no_server_errors(route: Server, reading: str, method: str, path: str, mode: GenerationMode) -> None:
    operation = _operation(reading, method, path)
    checks = [not_a_server_error]
    if route.args == [] and method == "post" and mode == GenerationMode.POSITIVE:
        # The lean route's answers follow the document. KServe's add nulls where it says object or
        # array ("parameters": null in outputs, "versions": null in metadata): not checked there.
        checks.append(response_schema_conformance)

    @settings(
        max_examples=EXAMPLES[method],
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # bounded: no shrinking runs after a failure
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=route.url, timeout=30)
        if response.status_code == 200 or not checks[1:]:
            case.validate_response(response, checks=checks)
        else:
            case.validate_response(response, checks=[not_a_server_error])

    check()
    assert route.process is not None and route.process.poll() is None, "the server died"
