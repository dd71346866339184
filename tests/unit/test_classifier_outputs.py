"""A booster's prediction array turned into label / probabilities / raw, as sklearn's wrappers answer."""

from __future__ import annotations

import numpy as np
import pytest

from predictor.modeldir.spec import OutputSpec
from predictor.runtimes import RuntimeLoadError
from predictor.runtimes.classifier_outputs import BoosterTask, check_outputs, declared_outputs, feature_count_check
from predictor.runtimes.lightgbm_runtime import objective_of
from predictor.runtimes.lightgbm_runtime import task_of as lightgbm_task
from predictor.runtimes.xgboost_runtime import task_of as xgboost_task

OUTPUTS = [
    OutputSpec(name="label", datatype="INT64", shape=[-1], source="label"),
    OutputSpec(name="probabilities", datatype="FP32", shape=[-1, 2], source="probabilities"),
    OutputSpec(name="raw", datatype="FP64", shape=[-1], source="raw"),
]


def test_binary_probability_becomes_two_columns_and_a_half_is_class_0() -> None:
    task = BoosterTask("binary_probability", 2, "binary:logistic")
    out = declared_outputs(task, np.array([0.2, 0.5, 0.9], dtype=np.float32), OUTPUTS)
    assert out["label"].tolist() == [0, 0, 1]
    assert out["label"].dtype == np.int64
    np.testing.assert_allclose(out["probabilities"], [[0.8, 0.2], [0.5, 0.5], [0.1, 0.9]], rtol=1e-6)
    assert out["probabilities"].dtype == np.float32
    assert out["raw"].dtype == np.float64


def test_multiclass_label_is_the_most_probable_class() -> None:
    task = BoosterTask("class_probabilities", 3, "multi:softprob")
    probabilities = np.array([[0.1, 0.7, 0.2], [0.4, 0.4, 0.2]])
    out = declared_outputs(task, probabilities, OUTPUTS[:1])
    assert out["label"].tolist() == [1, 0]  # a tie goes to the lower class, as argmax


def test_class_index_objective_has_no_probabilities() -> None:
    task = BoosterTask("class_index", 3, "multi:softmax")
    assert declared_outputs(task, np.array([2.0, 0.0]), OUTPUTS[:1])["label"].tolist() == [2, 0]
    with pytest.raises(RuntimeLoadError) as info:
        check_outputs(task, OUTPUTS, "XGBoost")
    assert str(info.value) == (
        "output 'probabilities' asks for 'probabilities', but this XGBoost model's objective 'multi:softmax' "
        "gives only ['label', 'raw']"
    )


@pytest.mark.parametrize(
    ("objective", "num_class", "kind", "classes"),
    [
        ("binary:logistic", 0, "binary_probability", 2),
        ("multi:softprob", 5, "class_probabilities", 5),
        ("multi:softmax", 4, "class_index", 4),
        ("binary:hinge", 0, "class_index", 2),
        ("reg:squarederror", 0, "value", 0),
        ("rank:ndcg", 0, "value", 0),
        ("binary:logitraw", 0, "value", 0),  # margins, not probabilities
    ],
)
def test_xgboost_objectives(objective: str, num_class: int, kind: str, classes: int) -> None:
    assert xgboost_task(objective, num_class) == BoosterTask(kind, classes, objective)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("objective", "per_iteration", "kind", "classes"),
    [
        ("binary", 1, "binary_probability", 2),
        ("multiclass", 3, "class_probabilities", 3),
        ("multiclassova", 4, "class_probabilities", 4),
        ("regression", 1, "value", 0),
        ("lambdarank", 1, "value", 0),
    ],
)
def test_lightgbm_objectives(objective: str, per_iteration: int, kind: str, classes: int) -> None:
    assert lightgbm_task(objective, per_iteration) == BoosterTask(kind, classes, objective)  # type: ignore[arg-type]


def test_lightgbm_objective_is_read_from_the_header_only() -> None:
    assert objective_of("tree\nversion=v4\nobjective=multiclass num_class:3\n\nTree=0\n") == "multiclass"
    with pytest.raises(RuntimeLoadError, match="names no objective in its header"):
        objective_of("tree\nversion=v4\n\nTree=0\nobjective=binary\n")


def test_feature_count_mismatch_says_what_to_declare() -> None:
    feature_count_check([-1, 4], 4, "XGBoost", "x")
    with pytest.raises(RuntimeLoadError) as info:
        feature_count_check([-1, 2, 2], 4, "LightGBM", "x")
    assert str(info.value) == (
        "input 'x' is declared with shape [-1, 2, 2], but the LightGBM model reads 4 features per row: declare [-1, 4]"
    )
