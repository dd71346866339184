"""KServe's canary fields as pure transformations of InferenceService dicts, in both modes.

Every result is also checked against KServe's CRD schema made strict (tests/chart/k8s_checks.py):
what the tool writes is what the API server accepts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from predictor.canary import isvc
from predictor.canary.isvc import ChangeRefused, Mode, NoCanary
from predictor.kube_object import Obj
from tests.support.canary_edges import knative_isvc, knative_status, standard_isvc, standard_status
from tests.support.k8s_checks import ObjectValidator

V2_URI = "s3://models/iris/v2"


def valid(obj: isvc.Obj, validator: ObjectValidator) -> isvc.Obj:
    problems = validator.problems({k: v for k, v in obj.items() if k != "status"})
    assert not problems, problems
    return obj


def env(predictor: isvc.Obj) -> dict[str, str]:
    return {item["name"]: item["value"] for item in predictor["containers"][0]["env"]}


# --- Standard mode ------------------------------------------------------------------------------


def test_start_adds_one_named_canary_entry(object_validator: ObjectValidator) -> None:
    before = standard_isvc()
    after = valid(isvc.start(before, "v2", storage_uri=V2_URI, weight=10), object_validator)
    (entry,) = after["spec"]["canary"]
    assert entry["trafficPercent"] == 10
    assert entry["predictor"]["name"] == "v2"
    assert env(entry["predictor"])["STORAGE_URI"] == V2_URI
    assert env(entry["predictor"])["PREDICTOR_MODEL_NAME"] == "iris", "the rest of the container is kept"
    assert not set(isvc.AUTOSCALING_FIELDS) & set(entry["predictor"]), "the webhook refuses autoscaling on a canary"
    assert entry["predictor"]["minReplicas"] == 1, "KServe runs no pod for a canary at 0% without it"
    assert after["spec"]["predictor"] == before["spec"]["predictor"], "the stable predictor is untouched"
    assert "canary" not in before["spec"], "the argument is not changed"


def test_a_scale_to_zero_stable_gets_a_canary_without_minreplicas(object_validator: ObjectValidator) -> None:
    """The webhook refuses a canary minReplicas above the stable's."""
    stable = standard_isvc()
    stable["spec"]["predictor"]["minReplicas"] = 0
    (entry,) = valid(isvc.start(stable, "v2", storage_uri=V2_URI), object_validator)["spec"]["canary"]
    assert "minReplicas" not in entry["predictor"]


@pytest.mark.parametrize("make", [standard_isvc, knative_isvc])
def test_the_same_start_again_changes_nothing(make: Callable[[], Obj]) -> None:
    started = isvc.start(make(), "v2", storage_uri=V2_URI, weight=10)
    assert isvc.start(started, "v2", storage_uri=V2_URI, weight=10) == started
    with pytest.raises(ChangeRefused, match="already has a canary"):
        isvc.start(started, "v2", storage_uri=V2_URI, weight=20)


def test_start_with_an_image_only() -> None:
    after = isvc.start(standard_isvc(), "v2", image="servekit/predictor:0.2.0")
    predictor = after["spec"]["canary"][0]["predictor"]
    assert predictor["containers"][0]["image"] == "servekit/predictor:0.2.0"
    assert env(predictor)["STORAGE_URI"] == "s3://models/iris/v1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: isvc.start(o, "v2"), "give --storage-uri or --image"),
        (lambda o: isvc.start(o, "v1", storage_uri=V2_URI), "must differ from spec.predictor.name"),
        (lambda o: isvc.start(o, "v2", storage_uri=V2_URI, weight=101), "weight 101 must be an integer from 0 to 100"),
        (lambda o: isvc.start(isvc.start(o, "v2", storage_uri=V2_URI), "v3", image="x"), "already has a canary 'v2'"),
    ],
)
def test_start_refuses_what_kserve_would(change: object, message: str) -> None:
    with pytest.raises(ChangeRefused, match=message):
        change(standard_isvc())  # type: ignore[operator]


def test_start_needs_a_named_stable_predictor_with_a_storage_uri() -> None:
    unnamed = standard_isvc()
    del unnamed["spec"]["predictor"]["name"]
    with pytest.raises(ChangeRefused, match=r"needs spec\.predictor\.name"):
        isvc.start(unnamed, "v2", storage_uri=V2_URI)
    baked = standard_isvc()
    baked["spec"]["predictor"]["containers"][0]["env"] = []
    with pytest.raises(ChangeRefused, match="from storage"):
        isvc.start(baked, "v2", image="servekit/predictor:0.2.0")


def test_set_weight_and_its_bounds(object_validator: ObjectValidator) -> None:
    started = isvc.start(standard_isvc(), "v2", storage_uri=V2_URI)
    assert valid(isvc.set_weight(started, 40), object_validator)["spec"]["canary"][0]["trafficPercent"] == 40
    with pytest.raises(ChangeRefused, match="weight -1"):
        isvc.set_weight(started, -1)
    with pytest.raises(NoCanary, match="no canary to weigh"):
        isvc.set_weight(standard_isvc(), 40)


def test_promote_merges_the_canary_over_the_stable_under_its_name(object_validator: ObjectValidator) -> None:
    started = isvc.start(standard_isvc(), "v2", storage_uri=V2_URI, weight=50)
    started["spec"]["canary"][0]["predictor"]["minReplicas"] = 1
    started["spec"]["canary"][0]["predictor"]["labels"] = {"track": "canary"}
    promoted = valid(isvc.promote(started), object_validator)
    predictor = promoted["spec"]["predictor"]
    assert "canary" not in promoted["spec"]
    assert predictor["name"] == "v2"
    assert env(predictor)["STORAGE_URI"] == V2_URI
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 4), "the stable's sizing stays"
    assert predictor["labels"] == {"app.kubernetes.io/component": "predictor", "track": "canary"}, "maps merge"
    with pytest.raises(NoCanary):
        isvc.promote(promoted)


def test_rollback_drops_the_entry(object_validator: ObjectValidator) -> None:
    before = standard_isvc()
    rolled_back = valid(isvc.rollback(isvc.start(before, "v2", storage_uri=V2_URI, weight=30)), object_validator)
    assert rolled_back["spec"] == before["spec"]


def test_restore_writes_back_recorded_specs(object_validator: ObjectValidator) -> None:
    started = isvc.start(standard_isvc(), "v2", storage_uri=V2_URI, weight=30)
    promoted = isvc.promote(started)
    restored = valid(isvc.restore(promoted, started["spec"]["predictor"], started["spec"]["canary"]), object_validator)
    assert restored["spec"] == started["spec"]
    back_to_stable = isvc.restore(started, standard_isvc()["spec"]["predictor"], None)
    assert "canary" not in back_to_stable["spec"]


def with_canaries(*entries: isvc.Obj) -> isvc.Obj:
    obj = standard_isvc()
    obj["spec"]["canary"] = list(entries)
    return obj


def entry(name: str | None, percent: object = 10, **predictor: object) -> isvc.Obj:
    fields = {"name": name, **predictor} if name else dict(predictor)
    return {"trafficPercent": percent, "predictor": fields}


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        (with_canaries(entry(None)), "spec.canary[0].predictor.name is required"),
        (with_canaries(entry("v2", 60), entry("v3", 50)), "add up to 110, above 100"),
        (with_canaries(entry("v2"), entry("v2")), "'v2' is used twice"),
        (with_canaries(entry("v1")), "must differ from spec.predictor.name"),
        (with_canaries(entry("v2", 120)), "trafficPercent is 120, expected 0..100"),
        (with_canaries(entry("v2", maxReplicas=3)), "sets maxReplicas: a canary takes the stable's autoscaling"),
        (with_canaries(entry("v2", minReplicas=3)), "minReplicas 3 is above the stable's 2"),
    ],
)
def test_kserve_webhook_rules(obj: isvc.Obj, problem: str) -> None:
    assert any(problem in p for p in isvc.kserve_problems(obj)), isvc.kserve_problems(obj)


def test_canary_entries_outside_standard_mode_are_refused() -> None:
    obj = with_canaries(entry("v2"))
    obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Knative"
    assert "spec.canary is only supported in Standard mode" in isvc.kserve_problems(obj)[0]
    obj = standard_isvc()
    obj["spec"]["predictor"]["canaryTrafficPercent"] = 10
    assert "ignored by KServe in Standard mode" in isvc.kserve_problems(obj)[0]


def test_two_canaries_are_not_driven() -> None:
    with pytest.raises(ChangeRefused, match=r"has 2 canaries \['v2', 'v3'\]; servekit-canary drives one"):
        isvc.view(with_canaries(entry("v2", 10), entry("v3", 10)))


def test_standard_view_reads_readiness_from_canary_statuses() -> None:
    obj = isvc.start(standard_isvc(), "v2", storage_uri=V2_URI, weight=20)
    assert not isvc.view(obj).ready
    obj["status"] = standard_status("v2", ready=True, percent=20)
    current = isvc.view(obj)
    assert (current.mode, current.present, current.canary, current.stable, current.weight, current.ready) == (
        Mode.STANDARD, True, "v2", "v1", 20, True,
    )  # fmt: skip
    assert current.checksum == isvc.view(isvc.set_weight(obj, 50)).checksum, "the weight is not the identity"
    assert current.promoted("v2", current.checksum) is False
    promoted = isvc.view(isvc.promote(obj))
    assert promoted.promoted("v2", current.checksum)


@pytest.mark.parametrize(("annotation", "mode"), [("RawDeployment", Mode.STANDARD), ("Serverless", Mode.KNATIVE)])
def test_old_mode_names(annotation: str, mode: Mode) -> None:
    obj = standard_isvc()
    obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = annotation
    assert isvc.mode_of(obj) == mode


def test_unknown_mode_asks_for_the_annotation() -> None:
    obj = standard_isvc()
    del obj["metadata"]["annotations"]
    with pytest.raises(ChangeRefused, match=r"set the annotation serving\.kserve\.io/deploymentMode"):
        isvc.mode_of(obj)
    obj["status"] = {"deploymentMode": "Standard"}
    assert isvc.mode_of(obj) == Mode.STANDARD, "what KServe wrote in the status counts"


# --- Knative mode -------------------------------------------------------------------------------


def test_knative_start_changes_the_predictor_with_a_traffic_share(object_validator: ObjectValidator) -> None:
    started = valid(isvc.start(knative_isvc(), "v2", storage_uri=V2_URI, weight=10), object_validator)
    predictor = started["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    assert env(predictor)["STORAGE_URI"] == V2_URI
    assert "canary" not in started["spec"]


def test_a_canary_of_another_image_only_is_promoted_under_the_stable_name(object_validator: ObjectValidator) -> None:
    """KServe's webhook refuses "predictor.name change requires a model change (e.g. storageUri)"."""
    started = isvc.start(standard_isvc(), "v2", image="servekit/predictor:0.2.0", weight=50)
    promoted = valid(isvc.promote(started), object_validator)
    predictor = promoted["spec"]["predictor"]
    assert predictor["name"] == "v1" and "canary" not in promoted["spec"]
    assert predictor["containers"][0]["image"] == "servekit/predictor:0.2.0"


def test_knative_promote_removes_the_share_and_rollback_restores_the_previous_spec(
    object_validator: ObjectValidator,
) -> None:
    before = knative_isvc()
    started = isvc.start(before, "v2", storage_uri=V2_URI, weight=10)
    promoted = valid(isvc.promote(started), object_validator)
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]
    assert env(promoted["spec"]["predictor"])["STORAGE_URI"] == V2_URI

    rolled_back = valid(isvc.rollback(started, before["spec"]["predictor"]), object_validator)
    assert rolled_back["spec"]["predictor"] == {**before["spec"]["predictor"], "canaryTrafficPercent": 0}
    unknown_previous = isvc.rollback(started, None)
    assert unknown_previous["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert env(unknown_previous["spec"]["predictor"])["STORAGE_URI"] == V2_URI


def test_knative_rollback_settles_only_once_the_restored_revision_is_ready() -> None:
    before = knative_isvc()
    stable = isvc.predictor_checksum(before["spec"]["predictor"])
    rolled_back = isvc.rollback(isvc.start(before, "v2", storage_uri=V2_URI, weight=10), before["spec"]["predictor"])
    rolled_back["metadata"]["generation"] = 3
    rolled_back["status"] = knative_status("iris-predictor-00003", "iris-predictor-00002", "iris-predictor-00001", 3)
    current = isvc.view(rolled_back, stable)
    assert current.restoring and not current.present, "a restored spec at 0% is no canary"
    assert isvc.settle(rolled_back, stable) is None, "the restored revision is not ready yet"
    rolled_back["status"] = knative_status("iris-predictor-00003", "iris-predictor-00003", "iris-predictor-00001", 3)
    settled = isvc.settle(rolled_back, stable)
    assert settled is not None
    assert settled["spec"]["predictor"] == before["spec"]["predictor"]


def test_knative_view_reads_revisions_from_the_status() -> None:
    obj = isvc.start(knative_isvc(), "v2", storage_uri=V2_URI, weight=10)
    obj["metadata"]["generation"] = 2
    obj["status"] = knative_status("iris-predictor-00002", "iris-predictor-00001", "iris-predictor-00001", 2)
    current = isvc.view(obj)
    assert (current.mode, current.present, current.canary, current.stable, current.weight) == (
        Mode.KNATIVE, True, "iris-predictor-00002", "iris-predictor-00001", 10,
    )  # fmt: skip
    assert not current.ready, "the new revision is created, not ready"
    obj["status"] = knative_status("iris-predictor-00002", "iris-predictor-00002", "iris-predictor-00001", 1)
    assert not isvc.view(obj).ready, "KServe has not seen the latest generation yet"
    obj["status"]["observedGeneration"] = 2
    assert isvc.view(obj).ready
    variants = current.variants()
    assert variants.knative and variants.canary.revision == "iris-predictor-00002"


def test_knative_weight_out_of_range_is_refused() -> None:
    obj = knative_isvc()
    obj["spec"]["predictor"]["canaryTrafficPercent"] = 150
    assert "canaryTrafficPercent is 150, expected 0..100" in isvc.kserve_problems(obj)[0]


def test_framework_predictors_change_the_model_storage_uri() -> None:
    obj = knative_isvc()
    obj["spec"]["predictor"] = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://a/v1"}}
    started = isvc.start(copy.deepcopy(obj), "v2", storage_uri="gs://a/v2", weight=5)
    assert started["spec"]["predictor"]["model"]["storageUri"] == "gs://a/v2"
    with pytest.raises(ChangeRefused, match="--image needs a custom-container predictor"):
        isvc.start(obj, "v2", image="x")
