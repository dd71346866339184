"""The rollout state machine, step by step, on in-memory edges (tests/unit/canary_edges.py).

The metric values, webhook answers and the clock are scripted; the InferenceService changes are the
real transformations, and KServe's part (reporting a canary ready) is played by the test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from predictor.canary import history, isvc, rollout, state
from predictor.canary.isvc import CanaryView, Mode
from predictor.canary.spec import AnalysisSpec
from predictor.canary.state import Gathered, HookAnswer, Need, Phase, RolloutState
from tests.support.canary_edges import (
    MemoryEdges,
    knative_isvc,
    knative_reports,
    knative_status,
    standard_isvc,
    standard_status,
)

NS, NAME = "models", "iris"
GOOD = {"code=~": 0.0, "servekit_requests_total": 300.0, "servekit_request_duration_seconds": 0.05}
FAILING = {"code=~": 30.0, "servekit_requests_total": 300.0, "servekit_request_duration_seconds": 0.05}
SLOW = {"code=~": 0.0, "servekit_requests_total": 300.0, "servekit_request_duration_seconds": 2.5}
FEW = {"code=~": 0.0, "servekit_requests_total": 3.0, "servekit_request_duration_seconds": 0.05}


@dataclass
class Rollout:
    spec: AnalysisSpec
    memory: MemoryEdges = field(default_factory=MemoryEdges)
    current: RolloutState = field(default_factory=RolloutState)
    phases: list[Phase] = field(default_factory=list)

    def step(self) -> RolloutState:
        self.current = rollout.step(self.memory.edges(), self.spec, NS, NAME, self.current)
        self.phases.append(self.current.phase)
        return self.current

    def run(self, max_steps: int = 40) -> RolloutState:
        """Step every interval until the rollout ends (or holds still)."""
        for _ in range(max_steps):
            self.step()
            if self.current.phase in state.TERMINAL and self.current.finished:
                return self.current
            self.memory.clock.advance(self.spec.interval_seconds)
        return self.current

    def obj(self) -> dict[str, Any]:
        return self.memory.isvcs.get(NS, NAME)

    def weights(self) -> list[int]:
        return [entry.canary[0]["trafficPercent"] for entry in self.entries("set-weight") if entry.canary]

    def entries(self, action: str) -> list[Any]:
        return [e for e in self.memory.history.read(NS, NAME) if e.action == action]


def standard_rollout(spec: AnalysisSpec, metrics: dict[str, float | None]) -> Rollout:
    """A Standard-mode InferenceService with canary v2 at 0%, reported ready by "KServe"."""
    run = Rollout(spec)
    run.memory.isvcs.add(isvc.start(standard_isvc(NAME), "v2", storage_uri="s3://models/iris/v2"))
    run.memory.isvcs.set_status(NS, NAME, standard_status("v2", ready=True))
    run.memory.metrics.answers = dict(metrics)
    return run


SPEC = AnalysisSpec(steps=[10, 25, 50], interval="30s", threshold=2)


def test_a_healthy_canary_is_stepped_up_and_promoted() -> None:
    run = standard_rollout(SPEC, GOOD)
    final = run.run()
    assert final.phase == Phase.SUCCEEDED and final.finished
    spec = run.obj()["spec"]
    assert spec["predictor"]["name"] == "v2" and "canary" not in spec
    assert run.weights() == [10, 25, 50]
    assert [e.action for e in run.memory.history.read(NS, NAME)] == ["set-weight"] * 3 + ["promote"]
    assert run.memory.events.reasons() == ["Started", "Advanced", "Advanced", "Promoted"]
    assert final.failed_checks == 0 and final.iterations == 3
    assert 'app="isvc.iris-v2-predictor"' in run.memory.metrics.asked[0]


@pytest.mark.parametrize(
    ("metrics", "reason"),
    [
        (FAILING, "request-success-rate: 90.00% (min 99%)"),
        (SLOW, "request-duration-p99: 2500.0 ms (max 500 ms)"),
        ({}, "no data"),
        (FEW, "too few requests: 3 < 20"),
    ],
    ids=["errors", "latency", "no-data", "too-few-requests"],
)
def test_a_bad_canary_is_rolled_back_after_threshold_failures(metrics: dict[str, float | None], reason: str) -> None:
    run = standard_rollout(SPEC, metrics)
    final = run.run()
    assert final.phase == Phase.FAILED and final.finished
    assert final.failed_checks == 2
    assert reason in final.message
    assert "canary" not in run.obj()["spec"] and run.obj()["spec"]["predictor"]["name"] == "v1"
    assert run.weights() == [10], "never stepped past the first weight"
    assert run.memory.events.reasons() == ["Started", "AnalysisFailed", "RolledBack"]
    assert all(event.warning for event in run.memory.events.events[1:])


def test_no_prometheus_counts_against_the_canary() -> None:
    run = standard_rollout(SPEC, GOOD)
    run.memory.metrics.down = True
    final = run.run()
    assert final.phase == Phase.FAILED
    assert "no metrics: Prometheus at http://127.0.0.1:9 cannot be reached" in final.message


def test_a_template_that_fails_anyway_counts_against_the_canary() -> None:
    # Specs are checked when read; one built around the checks (model_construct) must still not crash a step.
    spec = SPEC.model_copy(update={"canary_selector": 'pod="$pod"'})
    run = standard_rollout(spec, GOOD)
    final = run.run()
    assert final.phase == Phase.FAILED and "no metrics: template 'pod=\"$pod\"' uses $pod" in final.message


def test_one_failure_below_the_threshold_is_forgiven() -> None:
    run = standard_rollout(SPEC, GOOD)
    run.step()  # started at 10%
    run.memory.clock.advance(30)
    run.memory.metrics.answers = dict(FAILING)
    assert run.step().failed_checks == 1 and run.current.phase == Phase.PROGRESSING
    run.memory.metrics.answers = dict(GOOD)
    assert run.run().phase == Phase.SUCCEEDED


def test_an_unready_canary_waits_then_fails_its_progress_deadline() -> None:
    run = standard_rollout(AnalysisSpec(interval="1m", progress_deadline="3m"), GOOD)
    run.memory.isvcs.set_status(NS, NAME, standard_status("v2", ready=False))
    assert run.step().message == "waiting for canary v2 to be ready"
    assert run.memory.metrics.asked == [], "no analysis of a canary that is not ready"
    final = run.run()
    assert final.phase == Phase.FAILED and "progress deadline" in final.message
    assert "canary" not in run.obj()["spec"]


def hooks(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "type": kind, "url": f"http://hooks.test/{name}"} for name, kind in pairs]


def test_confirm_rollout_holds_the_start_until_it_answers_2xx() -> None:
    spec = AnalysisSpec(steps=[50], interval="30s", webhooks=hooks(("gate", "confirm-rollout")))
    run = standard_rollout(spec, GOOD)
    run.memory.webhooks.answers = {"gate": False}
    assert run.step().phase == Phase.PAUSED
    assert "confirm-rollout holds the start: gate: HTTP 403" in run.current.message
    assert run.weights() == [] and run.memory.metrics.asked == []
    run.memory.clock.advance(10)
    run.step()
    assert run.memory.webhooks.called("gate") == 1, "a held gate is asked again only after the interval"
    run.memory.webhooks.answers = {"gate": True}
    assert run.run().phase == Phase.SUCCEEDED


def test_confirm_promotion_veto_holds_at_the_last_step() -> None:
    spec = AnalysisSpec(steps=[20, 40], interval="30s", webhooks=hooks(("approve", "confirm-promotion")))
    run = standard_rollout(spec, GOOD)
    run.memory.webhooks.answers = {"approve": False}
    for _ in range(6):
        run.step()
        run.memory.clock.advance(30)
    assert run.current.phase == Phase.PAUSED
    assert "confirm-promotion holds the promotion" in run.current.message
    assert run.obj()["spec"]["canary"][0]["trafficPercent"] == 40
    run.memory.webhooks.answers = {"approve": True}
    assert run.run().phase == Phase.SUCCEEDED


def test_failing_pre_rollout_hooks_count_as_failed_checks() -> None:
    spec = AnalysisSpec(interval="30s", threshold=3, webhooks=hooks(("load-test", "pre-rollout")))
    run = standard_rollout(spec, GOOD)
    run.memory.webhooks.answers = {"load-test": False}
    final = run.run()
    assert final.phase == Phase.FAILED and final.failed_checks == 3
    assert "pre-rollout hooks failed 3 times: load-test: HTTP 403" in final.message
    assert run.weights() == [], "the canary never got traffic"


def test_a_rollback_hook_that_answers_2xx_aborts() -> None:
    spec = AnalysisSpec(interval="30s", webhooks=hooks(("abort", "rollback")))
    run = standard_rollout(spec, GOOD)
    run.memory.webhooks.answers = {"abort": False}
    run.step()
    run.memory.clock.advance(30)
    run.step()
    assert run.current.phase == Phase.PROGRESSING
    run.memory.webhooks.answers = {"abort": True}
    assert run.run().phase == Phase.FAILED
    assert "the rollback hook abort asked for it" in run.current.message


def test_event_hooks_hear_every_decision_in_flaggers_shape() -> None:
    spec = AnalysisSpec(steps=[50], interval="30s", webhooks=[*hooks(("notify", "event"))])
    spec.webhooks[0].metadata.update({"team": "ml"})
    run = standard_rollout(spec, GOOD)
    run.run()
    payloads = [payload for name, payload in run.memory.webhooks.calls if name == "notify"]
    assert len(payloads) == 2  # Started, Promoted
    first = payloads[0]
    assert set(first) == {"name", "namespace", "phase", "checksum", "metadata"}
    assert (first["name"], first["namespace"]) == (NAME, NS)
    assert first["metadata"]["team"] == "ml" and first["metadata"]["type"] == "event"
    assert first["metadata"]["eventMessage"].startswith("analysis started")
    assert all(isinstance(value, str) for value in first["metadata"].values())


def test_a_manual_gate_holds_until_promote_by_hand() -> None:
    spec = AnalysisSpec(steps=[10, 50], interval="30s", manual_gates=[50])
    run = standard_rollout(spec, GOOD)
    run.run(max_steps=6)
    assert run.current.phase == Phase.PAUSED
    assert "manual gate at 50%" in run.current.message
    assert run.obj()["spec"]["canary"][0]["trafficPercent"] == 50
    # `servekit-canary promote` from another terminal:
    rollout.change_isvc(run.memory.edges(), NS, NAME, "promote", isvc.promote)
    final = run.step()
    assert final.phase == Phase.SUCCEEDED and "promoted outside the analysis" in final.message


def test_an_image_only_canary_promoted_by_hand_is_a_promotion() -> None:
    # KServe keeps the stable's name for a canary of the same model (promote() does so): the stable
    # now serving the canary's image is what tells a promotion from a rollback.
    run = Rollout(AnalysisSpec(steps=[10, 50], interval="30s", manual_gates=[50]))
    run.memory.isvcs.add(isvc.start(standard_isvc(NAME), "v2", image="servekit/predictor:0.2.0"))
    run.memory.isvcs.set_status(NS, NAME, standard_status("v2", ready=True))
    run.memory.metrics.answers = dict(GOOD)
    run.run(max_steps=6)
    assert run.current.phase == Phase.PAUSED
    rollout.change_isvc(run.memory.edges(), NS, NAME, "promote", isvc.promote)
    assert run.obj()["spec"]["predictor"]["name"] == "v1", "same model: KServe keeps the stable's name"
    final = run.step()
    assert final.phase == Phase.SUCCEEDED and "promoted outside the analysis" in final.message
    assert run.memory.events.reasons()[-1] == "Promoted"


def test_an_image_only_canary_removed_by_hand_is_still_a_rollback() -> None:
    run = Rollout(SPEC)
    run.memory.isvcs.add(isvc.start(standard_isvc(NAME), "v2", image="servekit/predictor:0.2.0"))
    run.memory.isvcs.set_status(NS, NAME, standard_status("v2", ready=True))
    run.memory.metrics.answers = dict(GOOD)
    run.step()
    rollout.do_rollback(run.memory.edges(), NS, NAME)
    assert run.step().phase == Phase.FAILED


def test_failures_still_roll_back_at_a_manual_gate() -> None:
    run = standard_rollout(AnalysisSpec(steps=[10], interval="30s", manual_gates=[10], threshold=1), GOOD)
    run.run(max_steps=3)
    assert run.current.phase == Phase.PAUSED
    run.memory.metrics.answers = dict(FAILING)
    assert run.run().phase == Phase.FAILED


def test_a_canary_removed_by_hand_ends_the_rollout_as_failed() -> None:
    run = standard_rollout(SPEC, GOOD)
    run.step()
    rollout.do_rollback(run.memory.edges(), NS, NAME)
    assert run.step().phase == Phase.FAILED


def test_a_restart_in_the_middle_carries_on_from_the_kept_state() -> None:
    """The state goes through JSON, as in the CanaryAnalysis status; a new process picks it up."""
    uninterrupted = standard_rollout(SPEC, GOOD)
    expected = uninterrupted.run()

    first = standard_rollout(SPEC, GOOD)
    first.step()
    first.memory.clock.advance(30)
    first.step()  # passed at 10%, now at 25%
    kept = json.loads(json.dumps(first.current.to_dict()))
    second = Rollout(SPEC, memory=first.memory, current=RolloutState.from_dict(kept))
    second.memory.clock.advance(30)
    final = second.run()
    assert final.phase == expected.phase == Phase.SUCCEEDED
    assert (final.iterations, final.failed_checks) == (expected.iterations, expected.failed_checks)
    assert first.weights() == [10, 25, 50], "no step repeated or skipped across the restart"


def test_a_terminal_write_that_did_not_land_is_written_again() -> None:
    run = standard_rollout(AnalysisSpec(steps=[50], interval="30s"), GOOD)
    run.step()
    run.memory.clock.advance(30)
    unfinished = state.advance(
        run.current, run.spec, isvc.view(run.obj()), Gathered(analysis=rollout._measure(
            run.memory.edges(), run.spec, isvc.view(run.obj())
        )), run.memory.clock.now,
    ).state  # fmt: skip
    assert unfinished.phase == Phase.SUCCEEDED and not unfinished.finished
    run.current = unfinished  # the process died before writing the promotion
    assert run.step().finished and run.obj()["spec"]["predictor"]["name"] == "v2"


def test_a_new_canary_after_a_finished_rollout_starts_over() -> None:
    run = standard_rollout(AnalysisSpec(steps=[50], interval="30s"), GOOD)
    assert run.run().phase == Phase.SUCCEEDED
    rollout.change_isvc(run.memory.edges(), NS, NAME, "start", lambda o: isvc.start(o, "v3", image="x:3"))
    run.memory.isvcs.set_status(NS, NAME, standard_status("v3", ready=True))
    assert run.step().phase == Phase.PROGRESSING and run.current.canary == "v3"
    assert run.current.failed_checks == 0 and run.current.iterations == 0


def test_conflicting_writes_are_retried_on_a_fresh_read() -> None:
    run = standard_rollout(AnalysisSpec(steps=[50], interval="30s"), GOOD)

    def label(obj: dict[str, Any]) -> None:  # someone else writes between our read and write
        obj["metadata"].setdefault("labels", {})["touched"] = "yes"

    run.memory.isvcs.interfere = [label]
    run.step()
    assert run.memory.isvcs.conflicts == 1
    obj = run.obj()
    assert obj["metadata"]["labels"] == {"touched": "yes"}, "the other writer's change is kept"
    assert obj["spec"]["canary"][0]["trafficPercent"] == 50


def test_knative_rollout_promotes_by_removing_the_share() -> None:
    run = Rollout(AnalysisSpec(steps=[20, 60], interval="30s"))
    run.memory.isvcs.add(knative_isvc(NAME))
    run.step()  # records the stable spec as the baseline
    rollout.change_isvc(run.memory.edges(), NS, NAME, "start", lambda o: isvc.start(o, "v2", image="x:2"))
    run.memory.isvcs.kserve = knative_reports("iris-predictor-00002", "iris-predictor-00001")
    run.memory.metrics.answers = dict(GOOD)
    final = run.run()
    assert final.phase == Phase.SUCCEEDED
    predictor = run.obj()["spec"]["predictor"]
    assert "canaryTrafficPercent" not in predictor and predictor["containers"][0]["image"] == "x:2"
    assert 'serving_knative_dev_revision="iris-predictor-00002"' in run.memory.metrics.asked[0]


def test_knative_rollback_restores_the_baseline_at_zero_then_settles() -> None:
    run = Rollout(AnalysisSpec(steps=[20], interval="30s", threshold=1))
    baseline = knative_isvc(NAME)
    run.memory.isvcs.add(baseline)
    run.step()
    rollout.change_isvc(run.memory.edges(), NS, NAME, "start", lambda o: isvc.start(o, "v2", image="x:2", weight=5))
    run.memory.isvcs.kserve = knative_reports("iris-predictor-00002", "iris-predictor-00001")
    run.memory.metrics.answers = dict(FAILING)
    assert run.run().phase == Phase.FAILED
    predictor = run.obj()["spec"]["predictor"]
    assert predictor == {**baseline["spec"]["predictor"], "canaryTrafficPercent": 0}, "no traffic to the failed one"

    def restored_revision_starting(obj: dict[str, Any]) -> None:
        obj["status"] = knative_status(
            "iris-predictor-00003", "iris-predictor-00002", "iris-predictor-00001", obj["metadata"]["generation"]
        )

    run.memory.isvcs.kserve = restored_revision_starting
    run.step()
    assert run.obj()["spec"]["predictor"]["canaryTrafficPercent"] == 0, "not before the restored revision is ready"
    run.memory.isvcs.kserve = knative_reports("iris-predictor-00003", "iris-predictor-00001")
    run.step()
    assert run.obj()["spec"]["predictor"] == baseline["spec"]["predictor"], "settled: the restored spec takes all"
    assert run.current.phase == Phase.FAILED


def test_a_knative_rollback_without_a_baseline_stays_rolled_back() -> None:
    # The canary was there before servekit-canary first looked: no stable spec to restore, so the
    # rollback leaves the failed revision at 0%. That is the rollback, not a new canary to start.
    run = Rollout(AnalysisSpec(steps=[20], interval="30s", threshold=1))
    run.memory.isvcs.add(isvc.start(knative_isvc(NAME), "v2", image="x:2", weight=5))
    run.memory.isvcs.kserve = knative_reports("iris-predictor-00002", "iris-predictor-00001")
    run.memory.metrics.answers = dict(FAILING)
    assert run.run().phase == Phase.FAILED
    assert run.obj()["spec"]["predictor"]["canaryTrafficPercent"] == 0
    for _ in range(5):
        run.memory.clock.advance(30)
        run.step()
    assert run.current.phase == Phase.FAILED and run.obj()["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert run.memory.events.reasons().count("Started") == 1, run.memory.events.reasons()


# --- the pure halves on their own ----------------------------------------------------------------


def view(present: bool = True, ready: bool = True, checksum: str = "c1") -> CanaryView:
    return CanaryView(NS, NAME, Mode.STANDARD, present, "v2" if present else None, "v1", 10, checksum, ready, "p")


def test_needs_asks_for_nothing_before_the_interval() -> None:
    spec = AnalysisSpec(interval="1m", webhooks=hooks(("r", "rollback")))
    started = RolloutState(Phase.PROGRESSING, "v2", "c1", 10, 0, confirmed=True, begun=True, next_analysis_at=100.0)
    assert state.needs(started, spec, view(), 99.0) == frozenset()
    assert state.needs(started, spec, view(), 100.0) == {Need.METRICS, Need.ROLLBACK_HOOK}
    assert state.needs(started, spec, view(ready=False), 100.0) == frozenset()


def test_advance_without_an_analysis_counts_a_failure() -> None:
    started = RolloutState(Phase.PROGRESSING, "v2", "c1", 10, 0, confirmed=True, begun=True)
    after = state.advance(started, AnalysisSpec(), view(), Gathered(), 0.0)
    assert after.state.failed_checks == 1 and "no analysis result" in after.state.message


def test_hook_answers_are_combined() -> None:
    spec = AnalysisSpec(webhooks=hooks(("a", "confirm-rollout"), ("b", "confirm-rollout")))
    answers = Gathered({"confirm-rollout": [HookAnswer("a", True, "HTTP 200"), HookAnswer("b", False, "HTTP 500")]})
    after = state.advance(RolloutState(), spec, view(), answers, 0.0)
    assert after.state.phase == Phase.PAUSED and after.state.message.endswith("b: HTTP 500")


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("history.json", "[1,", "history.json is not valid JSON"),
        ("history.json", "{}", "history.json must be a JSON array, got dict"),
        ("rollout.json", "[]", "rollout.json must be a JSON object, got list"),
    ],
)
def test_a_broken_history_config_map_is_named(key: str, text: str, message: str) -> None:
    read = history.parse if key == history.DATA_KEY else history.parse_rollout
    with pytest.raises(history.HistoryError, match=message):
        read(text)
    assert history.parse_rollout('{"phase": "Failed"}') == {"phase": "Failed"}
