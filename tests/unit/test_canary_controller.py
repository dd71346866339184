"""The controller's handlers as plain functions: the state lives in the CanaryAnalysis status.

The kopf wiring (registry, settings) is checked here too; running the controller against a real
API server is for the cluster tests on the control plane.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

import kopf
import pytest

from predictor.canary import controller, isvc, rollout
from predictor.canary.state import Phase, RolloutState
from tests.support.canary_edges import MemoryEdges, standard_isvc, standard_status

GOOD = {"code=~": 0.0, "servekit_requests_total": 500.0, "servekit_request_duration_seconds": 0.02}


def analysis(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "servekit.dev/v1alpha1",
        "kind": "CanaryAnalysis",
        "metadata": {"name": "iris", "namespace": "models", "generation": 1},
        "spec": {"inferenceService": "iris", "steps": [20, 60], "interval": "30s", "threshold": 2, **spec},
        "status": status or {},
    }


@pytest.fixture
def memory() -> MemoryEdges:
    edges = MemoryEdges()
    edges.isvcs.add(isvc.start(standard_isvc("iris"), "v2", storage_uri="s3://models/iris/v2"))
    edges.isvcs.set_status("models", "iris", standard_status("v2", ready=True))
    edges.metrics.answers = dict(GOOD)
    return edges


def reconcile_until_done(memory: MemoryEdges, body: dict[str, Any], looks: int = 20) -> list[dict[str, Any]]:
    """What the kopf timer does: each look stores the status it got back on the object."""
    statuses = []
    for _ in range(looks):
        body["status"] = controller.reconcile(json.loads(json.dumps(body)), lambda spec: memory.edges())
        statuses.append(body["status"])
        if body["status"].get("finished"):
            break
        memory.clock.advance(30)
    return statuses


def test_reconcile_promotes_and_keeps_everything_in_the_status(memory: MemoryEdges) -> None:
    statuses = reconcile_until_done(memory, analysis())
    final = statuses[-1]
    assert final["phase"] == "Succeeded" and final["canaryWeight"] == 60 and final["failedChecks"] == 0
    assert final["observedGeneration"] == 1
    (condition,) = final["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == ("Promoted", "True", "Succeeded")
    assert final["lastAnalysis"]["passed"] is True
    assert all(final[key].endswith("Z") for key in ("startedAt", "lastAnalysisAt", "nextAnalysisAt"))
    assert memory.isvcs.get("models", "iris")["spec"]["predictor"]["name"] == "v2"
    assert memory.events.reasons() == ["Started", "Advanced", "Promoted"], "events on the InferenceService"
    assert {event.target for event in memory.events.events} == {"iris"}


def test_reconcile_rolls_back_a_failing_canary(memory: MemoryEdges) -> None:
    memory.metrics.answers = {**GOOD, "code=~": 100.0}
    final = reconcile_until_done(memory, analysis())[-1]
    assert final["phase"] == "Failed" and final["failedChecks"] == 2
    assert final["conditions"][0]["status"] == "False"
    assert "canary" not in memory.isvcs.get("models", "iris")["spec"]


def test_a_restarted_controller_resumes_from_the_status(memory: MemoryEdges) -> None:
    body = analysis()
    first = reconcile_until_done(memory, body, looks=2)[-1]
    assert first["phase"] == "Progressing" and first["canaryWeight"] == 60
    # A new process: nothing but the object's status is carried over.
    state = controller.state_from_status(first)
    assert (state.phase, state.weight, state.step, state.begun) == (Phase.PROGRESSING, 60, 1, True)
    memory.clock.advance(30)
    final = reconcile_until_done(memory, body)[-1]
    assert final["phase"] == "Succeeded" and final["iterations"] == 2


def test_status_round_trips_the_state() -> None:
    state = RolloutState(
        Phase.PAUSED, "v2", "abc", 50, 2, failed_checks=1, iterations=3, confirmed=True, begun=True,
        started_at=1_800_000_000.0, next_analysis_at=1_800_000_060.0, message="held",
    )  # fmt: skip
    status = controller.status_from_state(state, {}, 4, 1_800_000_030.0)
    assert status["startedAt"] == "2027-01-15T08:00:00Z"
    assert controller.state_from_status(status) == state
    assert status["conditions"][0]["status"] == "Unknown"


def a_state_with_every_field_set() -> RolloutState:
    """A RolloutState in which every field differs from its default, built from the dataclass's own
    fields: a field added later is in it without anyone remembering to add it here."""
    values: dict[str, Any] = {}
    for number, item in enumerate(dataclasses.fields(RolloutState), start=1):
        default, kind = item.default, str(item.type)
        if item.name == "phase":
            values[item.name] = Phase.PAUSED
        elif kind.startswith("float"):
            values[item.name] = 1_800_000_000.0 + number  # whole seconds: the status keeps RFC 3339 seconds
        elif kind.startswith("bool"):
            values[item.name] = not default
        elif kind.startswith("int"):
            values[item.name] = 100 + number
        elif kind.startswith("str"):
            values[item.name] = f"{item.name}-value"
        elif kind.startswith("dict"):
            values[item.name] = {"passed": True, "checks": [{"name": item.name, "passed": True, "value": 1.0}]}
        else:
            raise AssertionError(f"RolloutState.{item.name}: no test value for type {kind!r}")
    state = RolloutState(**values)
    unset = [f.name for f in dataclasses.fields(state) if getattr(state, f.name) == f.default]
    assert unset == [], "every field must differ from its default, or a lost field would go unseen"
    return state


def test_status_round_trips_every_field_of_the_state() -> None:
    state = a_state_with_every_field_set()
    status = json.loads(json.dumps(controller.status_from_state(state, {}, 4, 1_800_000_030.0)))
    back = controller.state_from_status(status)
    lost = {
        f.name: getattr(back, f.name)
        for f in dataclasses.fields(state)
        if getattr(back, f.name) != getattr(state, f.name)
    }
    assert lost == {}, "fields the CanaryAnalysis status loses"


def test_a_restarted_controller_knows_an_image_only_canary_promoted_by_hand() -> None:
    # Every look of the controller starts from the status alone: what tells a promotion of an
    # image-only canary from a rollback must survive the trip through the status.
    memory = MemoryEdges()
    memory.isvcs.add(isvc.start(standard_isvc("iris"), "v2", image="servekit/predictor:0.2.0"))
    memory.isvcs.set_status("models", "iris", standard_status("v2", ready=True))
    memory.metrics.answers = dict(GOOD)
    body = analysis(steps=[20, 60], manualGates=[60])
    held = reconcile_until_done(memory, body, looks=4)[-1]
    assert held["phase"] == "Paused" and "manual gate at 60%" in held["message"]
    rollout.change_isvc(memory.edges(), "models", "iris", "promote", isvc.promote)
    final = reconcile_until_done(memory, body, looks=1)[-1]
    assert (final["phase"], final["message"]) == ("Succeeded", "canary v2 was promoted outside the analysis")


def test_the_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    state = RolloutState(Phase.PROGRESSING, message="a")
    first = controller.status_from_state(state, {}, 1, 100.0)
    later = controller.status_from_state(state, first, 1, 500.0)
    assert later["conditions"][0]["lastTransitionTime"] == first["conditions"][0]["lastTransitionTime"]


def test_an_invalid_spec_is_reported_in_the_status(memory: MemoryEdges) -> None:
    status = controller.reconcile(analysis(steps=[60, 20]), lambda spec: memory.edges())
    assert status["message"].startswith("invalid spec:") and "must rise strictly" in status["message"]
    assert memory.isvcs.writes == 0


def test_api_errors_keep_the_state_and_say_so(memory: MemoryEdges) -> None:
    status = controller.reconcile(analysis(inferenceService="missing"), lambda spec: memory.edges())
    assert status == {"message": "error, retrying: InferenceService models/missing not found"}


def test_no_prometheus_configured_is_said_in_the_status() -> None:
    from predictor.canary.rollout import ApiError

    def no_prometheus(spec: object) -> object:
        raise ApiError("no Prometheus: set spec.prometheusUrl or start the controller with --prometheus-url")

    status = controller.reconcile(analysis(), no_prometheus)  # type: ignore[arg-type]
    assert status["message"].startswith("error, retrying: no Prometheus: set spec.prometheusUrl")


def test_the_timer_handler_patches_only_what_changed(memory: MemoryEdges) -> None:
    body = analysis()
    patch = kopf.Patch()
    controller.on_timer(body=body, patch=patch, memo=kopf.Memo(edges_for=lambda spec: memory.edges()))
    assert patch["status"]["phase"] == "Progressing" and patch["status"]["canaryWeight"] == 20
    body["status"] = dict(patch["status"])
    again = kopf.Patch()
    controller.on_timer(body=body, patch=again, memo=kopf.Memo(edges_for=lambda spec: memory.edges()))
    assert "status" not in again or not again["status"], "nothing due yet: no write"


def test_the_registry_has_one_timer_on_canaryanalyses() -> None:
    args = argparse.Namespace(selector="app.kubernetes.io/instance=iris", tick=7.0, kubeconfig=None, context=None)
    registry = controller.build_registry(args)
    (timer,) = list(registry._spawning.get_all_handlers())
    assert timer.interval == 7.0 and timer.labels == {"app.kubernetes.io/instance": "iris"}
    assert timer.fn is controller.on_timer
    # kopf's timers put a finalizer on the object; ours must not (nothing to stop, and without a
    # running controller it would keep a CanaryAnalysis and its namespace from being deleted).
    assert timer.requires_finalizer is False


def test_a_kopf_that_keeps_its_timers_elsewhere_is_named() -> None:
    with pytest.raises(RuntimeError, match=r"kopf \S+ keeps its timers elsewhere"):
        controller._timers_without_finalizer(object())


@pytest.mark.parametrize("text", ["a", "=b", "a=b,c"])
def test_bad_selectors_are_named(text: str) -> None:
    with pytest.raises(ValueError, match=f"--selector {text!r}"):
        controller.parse_selector(text)
