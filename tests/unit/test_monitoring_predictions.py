"""Prediction metrics: bucket counts equal prometheus_client's own observe, classes named as the manifest says."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from predictor.modeldir.spec import ModelSpec
from predictor.monitoring.feedback import FeedbackError, judged_output, outcomes, parse_feedback
from predictor.monitoring.monitor import ModelMonitor, MonitoringSettings
from predictor.monitoring.predictions import VALUE_BUCKETS, LabelNames, PredictionMetrics, observe_many


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in registry.collect()
        for s in family.samples
        if s.name.startswith(name) and not s.name.endswith("_created")
    }


@pytest.mark.parametrize("buckets", [(0.1, 0.5, 1.0), VALUE_BUCKETS])
def test_observe_many_counts_as_observe_does(buckets: tuple[float, ...]) -> None:
    values = np.concatenate([np.random.default_rng(3).normal(0, 30, 500), np.array(buckets[:3]), [-1e9, 1e9]])
    one_by_one, at_once = CollectorRegistry(), CollectorRegistry()
    plain = Histogram("h", "h", buckets=buckets, registry=one_by_one)
    fast = Histogram("h", "h", buckets=buckets, registry=at_once)
    for value in values:
        plain.observe(float(value))
    observe_many(fast, values)
    expected, got = samples(one_by_one, "h"), samples(at_once, "h")
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


def test_labels_name_class_indices_and_leave_other_values_as_they_are() -> None:
    names = LabelNames(["cat", "dog"])
    assert [names.name(v) for v in (0, np.int64(1), 1.0, 2, -1, "tiger", b"emu")] == [
        "cat", "dog", "dog", "2", "-1", "tiger", "emu",
    ]  # fmt: skip
    assert LabelNames(None).name(1) == "1"
    assert names.names(np.array([1, 0, 1])).tolist() == ["dog", "cat", "dog"]


def classifier_spec(name: str) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "name": name,
            "framework": "sklearn",
            "artifact": {"path": "m.joblib", "sha256": "0" * 64},
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1], "source": "label"},
                {"name": "p", "datatype": "FP32", "shape": [-1, 2], "source": "probabilities"},
            ],
            "labels": ["no", "yes"],
        }
    )


def test_a_model_call_counts_every_predicted_row_under_its_label() -> None:
    metrics = PredictionMetrics("unit-predictions", classifier_spec("unit-predictions"))
    metrics.observe({"label": np.array([1, 0, 1, 1]), "p": np.array([[0.2, 0.8]] * 4, dtype=np.float32)})
    metrics.observe({"label": np.array([0]), "p": np.array([[0.9, 0.1]], dtype=np.float32)})
    big = np.array([0, 1] * 50)  # past SMALL: counted with numpy
    metrics.observe({"label": big, "p": np.tile(np.array([[0.95, 0.05]], dtype=np.float32), (100, 1))})
    assert REGISTRY.get_sample_value("servekit_predictions_total", {"model": "unit-predictions"}) is None
    metrics.publish()

    def value(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"model": "unit-predictions", **labels})

    assert value("servekit_predictions_total", output="label", label="yes") == 53
    assert value("servekit_predictions_total", output="label", label="no") == 52
    assert value("servekit_prediction_probability_count", output="p", label="yes") == 105
    assert value("servekit_prediction_probability_sum", output="p", label="no") == pytest.approx(0.2 * 4 + 0.9 + 95)
    # FP32 0.1 is 0.10000000149: above the 0.1 bound, as prometheus_client's own observe would put it
    # (the 100 rows at 0.05 are below it); cumulative counts, as Prometheus reads them
    assert value("servekit_prediction_probability_bucket", output="p", label="yes", le="0.1") == 100
    assert value("servekit_prediction_probability_bucket", output="p", label="yes", le="0.2") == 101


def test_feedback_documents_are_checked_and_joined() -> None:
    judged = judged_output(classifier_spec("unit-feedback"))
    assert judged is not None and judged.name == "label" and judged.is_class
    feedback = parse_feedback({"id": "r", "outputs": [{"name": "label", "data": ["yes", 0, 1]}]}, judged)
    assert outcomes(judged, LabelNames(["no", "yes"]), [1, 1, 1], feedback.truth) == [1.0, 0.0, 1.0]
    for document, message in [
        ([], "a JSON object"),
        ({"outputs": []}, "needs 'id'"),
        ({"id": "r", "outputs": [{"name": "y", "data": [1]}]}, r"one output named 'label' \(the truth\), got \['y'\]"),
        ({"id": "r", "outputs": [{"name": "label", "data": []}]}, "non-empty list"),
    ]:
        with pytest.raises(FeedbackError, match=message):
            parse_feedback(document, judged)
    with pytest.raises(FeedbackError, match="the answer had 2 rows, the feedback gives 3 values"):
        outcomes(judged, LabelNames(None), [1, 0], [1, 0, 1])


def test_a_regressor_is_judged_by_its_absolute_error() -> None:
    spec = ModelSpec.model_validate(
        {
            "name": "reg",
            "framework": "sklearn",
            "artifact": {"path": "m.joblib", "sha256": "0" * 64},
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
            "outputs": [{"name": "y", "datatype": "FP64", "shape": [-1], "source": "raw"}],
        }
    )
    judged = judged_output(spec)
    assert judged is not None and not judged.is_class
    assert outcomes(judged, LabelNames(None), [1.5, -2.0], [1.0, 1.0]) == [0.5, 3.0]
    with pytest.raises(FeedbackError, match="must be numbers"):
        outcomes(judged, LabelNames(None), [1.5], ["high"])


def test_a_monitoring_fault_is_logged_and_never_fails_the_model_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = ModelMonitor("unit-fault", classifier_spec("unit-fault"), tmp_path, MonitoringSettings())
    with caplog.at_level(logging.ERROR, logger="predictor.monitoring.monitor"):
        monitor.observe_call({}, {"p": np.zeros((1, 2))})  # no "label" output: a bug, not the caller's problem
        monitor.observe_call({}, {"p": np.zeros((1, 2))})
    assert [r.getMessage() for r in caplog.records] == [
        "monitoring of model unit-fault failed on a model call (logged once a minute)"
    ]
