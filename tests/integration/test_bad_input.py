"""Every kind of bad request gets a 4xx that names the problem, and the server keeps serving."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.payloads import GOOD, V2_CASES
from tests.support.server import Server


@pytest.mark.parametrize(("case", "body", "status", "fragment"), V2_CASES, ids=[c[0] for c in V2_CASES])
def test_v2_bad_input(iris_server: Server, case: str, body: dict[str, Any], status: int, fragment: str) -> None:
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", json=body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_v2_nan_in_binary_data(iris_server: Server) -> None:
    header = b'{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":16}}]}'
    data = np.array([[5.1, np.nan, 1.4, 0.2]], dtype="<f4").tobytes()
    response = httpx.post(
        f"{iris_server.url}/v2/models/iris/infer",
        content=header + data,
        headers={"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 400
    assert (
        response.json()["error"] == "input 'features': 1 value(s) are NaN or infinite; this input does not allow them"
    )


def test_v2_nan_literal_from_a_non_strict_client(iris_server: Server) -> None:
    # Python's json module writes NaN unquoted; that is not JSON, and the answer says so.
    raw = b'{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"data":[NaN,1,1,1]}]}'
    response = httpx.post(
        f"{iris_server.url}/v2/models/iris/infer", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "fragment"),
    [
        (b'{"inputs": [', "application/json", 400, "not valid JSON"),
        (b"[1, 2, 3]", "application/json", 400, "JSON object"),
        # curl's default form type is read as JSON (as v1 does); a real form is not JSON
        (b"features=1,2,3,4", "application/x-www-form-urlencoded", 400, "not valid JSON"),
        (b"<xml/>", "text/xml", 415, "'text/xml' is not supported"),
    ],
)
def test_v2_malformed_bodies(
    iris_server: Server, content: bytes, content_type: str, status: int, fragment: str
) -> None:
    response = httpx.post(
        f"{iris_server.url}/v2/models/iris/infer", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_unknown_model_is_404(iris_server: Server) -> None:
    for url, body in [
        ("/v2/models/roses/infer", {"inputs": [GOOD]}),
        ("/v1/models/roses:predict", {"instances": [[1, 2, 3, 4]]}),
    ]:
        response = httpx.post(iris_server.url + url, json=body)
        assert response.status_code == 404, url
        assert "roses" in response.json()["error"]
    assert httpx.get(f"{iris_server.url}/v2/models/roses").status_code == 404


V1_CASES = [
    ("no instances", {"rows": [[1, 2, 3, 4]]}, "needs 'instances'"),
    ("empty instances", {"instances": []}, "'instances' is empty"),
    ("ragged rows", {"instances": [[1, 2, 3, 4], [1, 2]]}, "rows have different lengths"),
    ("wrong width", {"instances": [[1, 2, 3]]}, "dimension 1 is 3, expected 4"),
    ("unknown feature", {"instances": [{"sepal_length": 1, "colour": 2}]}, "unknown features ['colour']"),
    ("mixed kinds", {"instances": [[1, 2, 3, 4], {"sepal_length": 1}]}, "mixes objects and lists"),
    ("null value", {"instances": [[1, None, 3, 4]]}, "'features'"),
]


@pytest.mark.parametrize(("case", "body", "fragment"), V1_CASES, ids=[c[0] for c in V1_CASES])
def test_v1_bad_input(iris_server: Server, case: str, body: dict[str, Any], fragment: str) -> None:
    response = httpx.post(f"{iris_server.url}/v1/models/iris:predict", json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_v1_malformed_json(iris_server: Server) -> None:
    # KServe's own decoder answers before the model sees the body.
    response = httpx.post(
        f"{iris_server.url}/v1/models/iris:predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "Unrecognized request format" in response.json()["error"]
    response = httpx.post(f"{iris_server.url}/v1/models/iris:predict", content=b"{not json")
    assert response.status_code == 400
    assert "Unrecognized request format" in response.json()["error"]


def test_v1_json_sent_as_a_form_type(iris_server: Server) -> None:
    # curl -d sends application/x-www-form-urlencoded; the JSON inside is still read.
    response = httpx.post(
        f"{iris_server.url}/v1/models/iris:predict",
        content=b'{"instances": [[6.7, 3.0, 5.2, 2.3]]}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.json() == {"predictions": [2]}


def test_server_still_serves_after_bad_input(iris_server: Server) -> None:
    for body in [c[1] for c in V2_CASES]:
        httpx.post(f"{iris_server.url}/v2/models/iris/infer", json=body)
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", json={"inputs": [GOOD]})
    assert response.status_code == 200
    assert response.json()["outputs"][0]["data"] == [0]
    metrics = httpx.get(f"{iris_server.url}/metrics").text
    assert 'servekit_requests_total{code="400",model="iris",protocol="v2"}' in metrics
