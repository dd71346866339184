"""Monitoring with ``--workers 2``: feedback reaches whichever worker the kernel picks, and still joins.

Answers are kept pod-wide (answers.SharedAnswers), so a feedback call answered by the worker that
did not serve the inference finds the answer; which worker served each call is read from /proc.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration import processes
from tests.support import monitoring_models
from tests.support.models import run_server
from tests.support.monitoring_models import LABELS, STDS, gaussian_rows
from tests.support.server import Server

MODEL = "gauss-classifier"
CALLS = 24  # the odds that no feedback lands on the other worker than its inference: 2**-24


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    model = monitoring_models.build(tmp_path_factory.mktemp("models") / "classifier", "classifier")
    args = ["--workers", "2", "--drift_interval_s", "0.2"]
    yield from run_server(tmp_path_factory, Server(model, MODEL, args=args))


def call(server: Server, method: str, path: str, body: object, pids: list[int], request_id: str = "") -> tuple:
    """One request on a fresh connection (so the kernel picks a worker anew): status, JSON, worker pid."""
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    try:
        headers = {"Content-Type": "application/json", **({"x-request-id": request_id} if request_id else {})}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        owner = processes.server_side_owner(server.http_port, conn.sock.getsockname()[1], pids)
        return response.status, data, owner
    finally:
        conn.close()


def scrape(server: Server, pids: list[int]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    _, text, _ = call(server, "GET", "/metrics", None, pids)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def predictions_total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "servekit_predictions_total" and dict(labels)["model"] == MODEL
    )


def test_feedback_joins_across_workers_with_exact_counts_and_accuracy(two_workers: Server) -> None:
    assert two_workers.process is not None
    pids = processes.children(two_workers.process.pid)
    assert len(pids) == 2, pids
    rows = gaussian_rows(2 * CALLS, seed=71)
    answered_by, predicted = {}, {}
    for i in range(CALLS):
        body = {
            "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [2, 4], "data": rows[2 * i : 2 * i + 2].ravel().tolist()}
            ]
        }
        status, data, owner = call(two_workers, "POST", f"/v2/models/{MODEL}/infer", body, pids, f"w-{i}")
        assert status == 200, data
        answered_by[f"w-{i}"], predicted[f"w-{i}"] = owner, json.loads(data)["outputs"][0]["data"]

    crossed = 0
    for i, (request_id, labels) in enumerate(predicted.items()):
        truth = [LABELS[label] for label in labels]
        if i % 3 == 0:  # every third answer's first row is called wrong
            truth[0] = LABELS[(labels[0] + 1) % 3]
        body = {"id": request_id, "outputs": [{"name": "label", "datatype": "BYTES", "shape": [2], "data": truth}]}
        status, data, owner = call(two_workers, "POST", f"/v2/models/{MODEL}/feedback", body, pids)
        assert status == 200, data
        crossed += owner is not None and owner != answered_by[request_id]
    assert crossed > 0, "every feedback reached the worker that answered; the pod-wide store was not tested"
    assert json.loads(data)["live_accuracy"] == pytest.approx((2 * CALLS - CALLS // 3) / (2 * CALLS))

    # Both workers' counts, each once (published every 0.5 s: the scrape is retried until all are in).
    deadline = time.monotonic() + 20
    while (counted := predictions_total(scrape(two_workers, pids))) != 2 * CALLS:
        assert counted < 2 * CALLS and time.monotonic() < deadline, counted
        time.sleep(0.05)
    samples = scrape(two_workers, pids)
    accuracy = samples[("servekit_live_accuracy", (("model", MODEL),))]
    assert accuracy == pytest.approx((2 * CALLS - CALLS // 3) / (2 * CALLS))


def test_each_worker_watches_drift_and_the_pod_reports_the_largest(two_workers: Server) -> None:
    """Runs after the feedback test (its 48 rows are in the windows too): 1600 rows with feature 2
    shifted by 3 std, on fresh connections; every worker's rows are counted once (livesum), and the
    drift gauge of the pod is the largest of the workers' (livemax)."""
    assert two_workers.process is not None
    pids = processes.children(two_workers.process.pid)
    rows = gaussian_rows(1600, seed=81)
    rows[:, 2] += 3 * STDS[2]
    served = set()
    for start in range(0, 1600, 50):
        data = rows[start : start + 50].ravel().tolist()
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [50, 4], "data": data}]}
        status, answer, owner = call(two_workers, "POST", f"/v2/models/{MODEL}/infer", body, pids)
        assert status == 200, answer
        served.add(owner)
    assert served == set(pids), f"only {served} of {pids} served: the test needs both workers' windows"

    def drift() -> tuple[float, dict[str, float]]:
        samples = scrape(two_workers, pids)
        seen = samples.get(("servekit_input_drift_rows", (("input", "x"), ("model", MODEL))), 0.0)
        psi = {
            dict(labels)["feature"]: value
            for (name, labels), value in samples.items()
            if name == "servekit_input_drift" and dict(labels)["model"] == MODEL
        }
        return seen, psi

    deadline = time.monotonic() + 20
    while (state := drift())[0] != 2 * CALLS + 1600:
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    psi = state[1]
    assert psi["2"] > 0.25, psi
    assert max(psi[f] for f in ("0", "1", "3")) < 0.1, psi
