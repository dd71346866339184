"""Model monitoring on real servers: per-label counts, input drift, feedback and live accuracy.

The drift gauges are read once ``servekit_input_drift_rows`` says they were computed after all the
traffic sent, so each assertion sees a PSI over exactly the rows the test chose.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.support import monitoring_models
from tests.support.auth import AUTH, BODY_LIMIT
from tests.support.models import run_server
from tests.support.monitoring_models import LABELS, STDS, gaussian_rows
from tests.support.server import Server

CLASSIFIER = "gauss-classifier"
REGRESSOR = "gauss-regressor"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("monitoring-models")
    return {kind: monitoring_models.build(root / kind, kind) for kind in ("classifier", "regressor")}


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory, models: dict[str, Path]) -> Iterator[Server]:
    yield from run_server(tmp_path_factory, Server(models["classifier"], CLASSIFIER))


@pytest.fixture(scope="module")
def drifting(tmp_path_factory: pytest.TempPathFactory, models: dict[str, Path]) -> Iterator[Server]:
    """The classifier with a quick drift computation and a one-second feedback TTL; only the drift
    and expiry tests send it traffic."""
    args = ["--drift_window", "1000", "--drift_interval_s", "0.2", "--feedback_ttl_s", "1"]
    yield from run_server(tmp_path_factory, Server(models["classifier"], CLASSIFIER, args=args))


@pytest.fixture(scope="module")
def regressor(tmp_path_factory: pytest.TempPathFactory, models: dict[str, Path]) -> Iterator[Server]:
    yield from run_server(tmp_path_factory, Server(models["regressor"], REGRESSOR))


def scrape(server: Server) -> Samples:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def v2_infer(server: Server, rows: np.ndarray, request_id: str | None = None) -> list[object]:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(rows.shape), "data": rows.ravel().tolist()}]}
    headers = {"x-request-id": request_id} if request_id else {}
    response = httpx.post(f"{server.url}/v2/models/{server.model_name}/infer", json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return list(response.json()["outputs"][0]["data"])


def v1_infer(server: Server, rows: np.ndarray, request_id: str) -> list[object]:
    response = httpx.post(
        f"{server.url}/v1/models/{server.model_name}:predict",
        json={"instances": rows.tolist()},
        headers={"x-request-id": request_id},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return list(response.json()["predictions"])


def grpc_infer(server: Server, rows: np.ndarray, request_id: str) -> list[object]:
    request = pb.ModelInferRequest(model_name=server.model_name)
    tensor = request.inputs.add(name="x", datatype="FP32", shape=list(rows.shape))
    tensor.contents.fp32_contents.extend(rows.ravel().tolist())
    with grpc.insecure_channel(server.grpc_target) as channel:
        response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            request, metadata=(("x-request-id", request_id),), timeout=10
        )
    return list(np.frombuffer(response.raw_output_contents[0], "<i8").tolist())


def feedback(server: Server, request_id: str, truth: list[object], name: str = "label") -> httpx.Response:
    body = {"id": request_id, "outputs": [{"name": name, "datatype": "BYTES", "shape": [len(truth)], "data": truth}]}
    return httpx.post(f"{server.url}/v2/models/{server.model_name}/feedback", json=body, timeout=10)


def wait_for(read: Callable[[], float], expected: float, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (value := read()) != expected:
        assert time.monotonic() < deadline, f"still {value} after {timeout_s} s, waiting for {expected}"
        time.sleep(0.05)


# ---- predictions ----------------------------------------------------------------------------------


def test_every_predicted_row_is_counted_under_its_label_on_every_route(classifier: Server) -> None:
    before = scrape(classifier)
    answered: list[object] = []
    rows = gaussian_rows(200, seed=11)
    for start in range(0, 100, 25):
        answered += v2_infer(classifier, rows[start : start + 25])
    answered += v1_infer(classifier, rows[100:150], "count-v1")
    answered += grpc_infer(classifier, rows[150:200], "count-grpc")

    def total_predictions() -> float:
        samples = scrape(classifier)
        return sum(v for (name, labels), v in samples.items() if name == "servekit_predictions_total")

    # Published every 0.5 s: wait until all 200 rows are in, then check where each went.
    total_before = sum(v for (name, _), v in before.items() if name == "servekit_predictions_total")
    wait_for(total_predictions, total_before + 200)
    after = scrape(classifier)
    expected = Counter(LABELS[int(str(label))] for label in answered)
    assert len(expected) == 3, expected  # the traffic reaches every class, so each count is tested
    for label in LABELS:
        labels = {"model": CLASSIFIER, "output": "label", "label": label}
        delta = metric(after, "servekit_predictions_total", **labels) - metric(
            before, "servekit_predictions_total", **labels
        )
        assert delta == expected[label], (label, delta, expected)
        # one probability per row for each class
        labels["output"] = "probabilities"
        count = "servekit_prediction_probability_count"
        assert metric(after, count, **labels) - metric(before, count, **labels) == 200


# ---- drift ----------------------------------------------------------------------------------------


def drift_by_feature(server: Server) -> dict[str, float]:
    samples = scrape(server)
    return {
        dict(labels)["feature"]: value
        for (name, labels), value in samples.items()
        if name == "servekit_input_drift" and dict(labels)["model"] == CLASSIFIER
    }


def drift_rows(server: Server) -> float:
    return metric(scrape(server), "servekit_input_drift_rows", model=CLASSIFIER, input="x")


def test_training_traffic_stays_low_and_a_shifted_feature_alone_goes_high(drifting: Server) -> None:
    assert drift_by_feature(drifting) == {}  # no PSI before enough rows: absent, not 0
    for start in range(0, 1000, 50):
        v2_infer(drifting, gaussian_rows(1000, seed=21)[start : start + 50])
    wait_for(lambda: drift_rows(drifting), 1000)
    unshifted = drift_by_feature(drifting)
    assert set(unshifted) == {"0", "1", "2", "3"}
    assert max(unshifted.values()) < 0.1, unshifted

    shifted = gaussian_rows(1000, seed=22)
    shifted[:, 2] += 3 * STDS[2]
    for start in range(0, 1000, 50):
        v2_infer(drifting, shifted[start : start + 50])
    wait_for(lambda: drift_rows(drifting), 2000)
    drift = drift_by_feature(drifting)
    assert drift["2"] > 0.25, drift
    assert max(drift[f] for f in ("0", "1", "3")) < 0.1, drift


# ---- feedback -------------------------------------------------------------------------------------


def test_feedback_gives_the_exact_accuracy_of_answers_from_every_route(classifier: Server) -> None:
    rows = gaussian_rows(30, seed=31)
    answers: dict[str, list[object]] = {}
    for i in range(8):
        answers[f"acc-{i}"] = v2_infer(classifier, rows[3 * i : 3 * i + 3], f"acc-{i}")
    answers["acc-v1"] = v1_infer(classifier, rows[24:27], "acc-v1")
    answers["acc-grpc"] = grpc_infer(classifier, rows[27:30], "acc-grpc")

    correct = 0
    for n, (request_id, predicted) in enumerate(answers.items()):
        # The first n % 4 rows of each answer are called wrong; the truth is sent as label names.
        wrong = n % 4
        truth = [LABELS[(int(str(p)) + (1 if row < wrong else 0)) % 3] for row, p in enumerate(predicted)]
        correct += len(truth) - min(wrong, len(truth))
        response = feedback(classifier, request_id, list(truth))
        assert response.status_code == 200, response.text
        assert response.json()["rows"] == 3
    assert correct == 17  # 30 rows, 0+1+2+3+0+1+2+3+0+1 = 13 called wrong
    assert response.json()["live_accuracy"] == pytest.approx(17 / 30)
    samples = scrape(classifier)
    assert metric(samples, "servekit_live_accuracy", model=CLASSIFIER) == pytest.approx(17 / 30)
    assert metric(samples, "servekit_feedback_total", model=CLASSIFIER, result="joined") == 10


def test_unknown_repeated_and_bad_feedback_say_what_is_wrong(classifier: Server) -> None:
    response = feedback(classifier, "never-answered", ["low"])
    assert response.status_code == 404
    assert "no answer with id 'never-answered'" in response.json()["error"]

    v2_infer(classifier, gaussian_rows(2, seed=41), "twice")
    response = feedback(classifier, "twice", ["low"])
    assert response.status_code == 400
    assert "the answer had 2 rows, the feedback gives 1 values" in response.json()["error"]
    assert feedback(classifier, "twice", ["low", "mid"]).status_code == 200  # the answer was kept
    again = feedback(classifier, "twice", ["low", "mid"])
    assert again.status_code == 404 and "already given" in again.json()["error"]

    response = feedback(classifier, "twice", ["low"], name="probabilities")
    assert response.status_code == 400
    assert "exactly one output named 'label'" in response.json()["error"]
    wrong_method = httpx.get(f"{classifier.url}/v2/models/{CLASSIFIER}/feedback", timeout=10)
    assert wrong_method.status_code == 405


def test_an_answer_is_joinable_by_its_v2_body_id_and_by_the_id_the_server_made(classifier: Server) -> None:
    rows = gaussian_rows(1, seed=45)
    body = {
        "id": "body-45",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": rows.ravel().tolist()}],
    }
    response = httpx.post(f"{classifier.url}/v2/models/{CLASSIFIER}/infer", json=body, timeout=10)
    assert response.status_code == 200 and response.json()["id"] == "body-45"
    (label,) = response.json()["outputs"][0]["data"]
    assert feedback(classifier, "body-45", [label]).status_code == 200

    del body["id"]
    response = httpx.post(f"{classifier.url}/v2/models/{CLASSIFIER}/infer", json=body, timeout=10)
    made = response.headers["x-request-id"]
    assert response.json()["id"] == made  # no body id: the request id the server made is the answer's id
    assert feedback(classifier, made, response.json()["outputs"][0]["data"]).status_code == 200


def test_feedback_after_the_time_to_live_is_refused(drifting: Server) -> None:
    v2_infer(drifting, gaussian_rows(1, seed=51), "late")
    time.sleep(1.2)  # the server's --feedback_ttl_s is 1: this wait is the thing under test
    response = feedback(drifting, "late", ["low"])
    assert response.status_code == 404
    assert "older than 1 s (--feedback_ttl_s)" in response.json()["error"]


def test_a_regressor_reports_its_mean_absolute_error_and_its_values(regressor: Server) -> None:
    rows = gaussian_rows(8, seed=61)
    errors = [0.5, -1.0, 2.0, 0.0]
    for i in range(4):
        predicted = v2_infer(regressor, rows[2 * i : 2 * i + 2], f"reg-{i}")
        truth = [float(str(p)) + errors[i] for p in predicted]
        body = {"id": f"reg-{i}", "outputs": [{"name": "y", "datatype": "FP64", "shape": [2], "data": truth}]}
        response = httpx.post(f"{regressor.url}/v2/models/{REGRESSOR}/feedback", json=body, timeout=10)
        assert response.status_code == 200, response.text
    assert response.json()["live_mean_absolute_error"] == pytest.approx(3.5 / 4)
    samples = scrape(regressor)
    assert metric(samples, "servekit_live_accuracy", model=REGRESSOR) == pytest.approx(3.5 / 4)
    wait_for(lambda: metric(scrape(regressor), "servekit_prediction_value_count", model=REGRESSOR, output="y"), 8)


def test_feedback_is_authenticated_and_bounded_as_inference_is(guarded_server: Server) -> None:
    url = f"{guarded_server.url}/v2/models/iris/feedback"
    body = {"id": "x", "outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}]}
    assert httpx.post(url, json=body, timeout=10).status_code == 401
    answer = httpx.post(url, json=body, headers=AUTH, timeout=10)
    assert answer.status_code == 404 and "no answer with id 'x'" in answer.json()["error"]
    huge = {**body, "padding": "x" * BODY_LIMIT}
    assert httpx.post(url, json=huge, headers=AUTH, timeout=10).status_code == 413
