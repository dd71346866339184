"""The pure parts of the edges: the merge patch the Kubernetes edge sends, and how a Prometheus answer
becomes one number."""

from __future__ import annotations

import httpx
import pytest

from predictor.canary.kube import merge_patch
from predictor.canary.prometheus import PrometheusSource, single_number
from predictor.canary.rollout import MetricsUnavailable


def apply(target: object, patch: object) -> object:
    """RFC 7386, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply(result.get(key), value)
    return result


CASES = [
    ({"a": 1}, {"a": 1}, {}),
    ({"a": 1}, {"a": 2}, {"a": 2}),
    ({"a": 1, "b": 2}, {"a": 1}, {"b": None}),
    (
        {"spec": {"canary": [{"x": 1}], "p": {"n": "v1"}}},
        {"spec": {"p": {"n": "v2"}}},
        {"spec": {"canary": None, "p": {"n": "v2"}}},
    ),
    ({"l": [1, 2]}, {"l": [2]}, {"l": [2]}),
    ({"m": {"x": 1}}, {"m": 5}, {"m": 5}),
]


@pytest.mark.parametrize(("old", "new", "expected"), CASES)
def test_merge_patch_turns_old_into_new(old: dict, new: dict, expected: dict) -> None:
    patch = merge_patch(old, new)
    assert patch == expected
    assert apply(old, patch) == new


def test_a_removed_canary_entry_is_a_null() -> None:
    old = {"spec": {"predictor": {"name": "v1"}, "canary": [{"trafficPercent": 10}]}}
    assert merge_patch(old, {"spec": {"predictor": {"name": "v1"}}}) == {"spec": {"canary": None}}


def vector(*values: str) -> dict[str, object]:
    return {"resultType": "vector", "result": [{"metric": {}, "value": [0, v]} for v in values]}


def test_one_number_from_prometheus_answers() -> None:
    assert single_number(vector("12.5"), "q") == 12.5
    assert single_number(vector(), "q") is None, "no series: no data"
    assert single_number(vector("NaN"), "q") is None, "histogram_quantile of nothing"
    assert single_number({"resultType": "scalar", "result": [0, "3"]}, "q") == 3.0
    with pytest.raises(MetricsUnavailable, match="returned 2 series; a check needs one number"):
        single_number(vector("1", "2"), "q")
    with pytest.raises(MetricsUnavailable, match="returned a matrix"):
        single_number({"resultType": "matrix", "result": []}, "q")


def test_every_query_of_an_analysis_is_asked_at_one_instant() -> None:
    """errors / requests from two instants a scrape apart read a canary failing every request as
    0.33% successful (a CI failure): the source pins Prometheus' ``time`` once per analysis."""
    asked: list[httpx.QueryParams] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params)
        return httpx.Response(200, json={"status": "success", "data": vector("7")})

    clock = iter([1000.0, 1001.5]).__next__
    source = PrometheusSource(
        "http://prometheus:9090/", client=httpx.Client(transport=httpx.MockTransport(answer)), clock=clock
    )
    first = source.values({"canary.requests": "sum(a)", "canary.errors": "sum(b)"})
    second = source.values({"canary.requests": "sum(a)"})
    assert first == {"canary.requests": 7.0, "canary.errors": 7.0} and second == {"canary.requests": 7.0}
    assert [(p["query"], p["time"]) for p in asked] == [
        ("sum(a)", "1000.000"),
        ("sum(b)", "1000.000"),
        ("sum(a)", "1001.500"),
    ]
