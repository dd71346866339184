"""The lean v2 route and KServe's own v2 route give the same answers and the same errors."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.payloads import V2_CASES
from tests.support.server import Server

GOOD = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 4], "data": [5.1, 3.5, 1.4, 0.2] * 2}]}


def outputs(body: dict[str, Any]) -> list[tuple[str, str, list[int], list[Any]]]:
    # As float32 values: orjson writes float32's shortest form, KServe the float64 one of the same value.
    return [(o["name"], o["datatype"], o["shape"], np.float32(o["data"]).tolist()) for o in body["outputs"]]


def test_same_answer(iris_server: Server, kserve_route_server: Server) -> None:
    lean = httpx.post(f"{iris_server.url}/v2/models/iris/infer", json={**GOOD, "id": "same"})
    kserve = httpx.post(f"{kserve_route_server.url}/v2/models/iris/infer", json={**GOOD, "id": "same"})
    assert lean.status_code == kserve.status_code == 200
    assert outputs(lean.json()) == outputs(kserve.json())
    assert lean.json()["id"] == kserve.json()["id"] == "same"
    assert lean.json()["model_name"] == kserve.json()["model_name"] == "iris"


# Cases where KServe's pydantic model answers first (422, its own wording) are left out: the
# schema checks are ours on both routes, the JSON shape checks differ by design.
SHARED = [c for c in V2_CASES if c[0] not in {"inputs not a list", "missing shape", "unknown datatype"}]


@pytest.mark.parametrize(("case", "body", "status", "fragment"), SHARED, ids=[c[0] for c in SHARED])
def test_same_error(
    iris_server: Server, kserve_route_server: Server, case: str, body: dict[str, Any], status: int, fragment: str
) -> None:
    lean = httpx.post(f"{iris_server.url}/v2/models/iris/infer", json=body)
    kserve = httpx.post(f"{kserve_route_server.url}/v2/models/iris/infer", json=body)
    assert (lean.status_code, kserve.status_code) == (status, status), (lean.text, kserve.text)
    assert lean.json()["error"] == kserve.json()["error"]
