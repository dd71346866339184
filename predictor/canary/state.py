"""The rollout state machine (pure): what to ask for next, and what to do with the answers.

One reconcile step has two halves, both pure:

1. ``needs(state, spec, view, now)`` says which hooks and metrics the caller must gather now;
2. ``advance(state, spec, view, gathered, now)`` turns the gathered answers into the next state and
   the actions to carry out (set a weight, promote, roll back, record an event).

The whole state is a small JSON-able value, kept on Kubernetes objects between steps (the
CanaryAnalysis status, or the history ConfigMap for ``servekit-canary run``), so a restarted
controller carries on where the last one stopped.

Flagger's vocabulary: confirm-rollout gates the start, pre-rollout hooks run once before the first
step (a failure counts as a failed check), each interval a rollback hook may abort and the
analysis runs; ``threshold`` failed checks roll back; after the last step passes,
confirm-promotion gates the promotion. Manual gates hold at a step until ``promote``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from predictor.canary.analysis import AnalysisResult
from predictor.canary.isvc import CanaryView
from predictor.canary.spec import AnalysisSpec, HookType


class Phase(StrEnum):
    IDLE = "Idle"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


ACTIVE = (Phase.PROGRESSING, Phase.PAUSED)
TERMINAL = (Phase.SUCCEEDED, Phase.FAILED)


class Need(StrEnum):
    CONFIRM_ROLLOUT = "confirm-rollout"
    PRE_ROLLOUT = "pre-rollout"
    ROLLBACK_HOOK = "rollback"
    CONFIRM_PROMOTION = "confirm-promotion"
    METRICS = "metrics"


# Field metadata read by the CanaryAnalysis status mapping (controller.py): the status spells a field
# in camelCase unless STATUS_NAME says otherwise, and writes TIME fields (epoch seconds here) in RFC 3339.
STATUS_NAME, TIME = "status_name", "time"


def _time() -> Any:
    return field(default=None, metadata={TIME: True})


@dataclass(frozen=True)
class RolloutState:
    phase: Phase = Phase.IDLE
    canary: str | None = None
    checksum: str = ""
    weight: int = field(default=0, metadata={STATUS_NAME: "canaryWeight"})
    step: int = -1  # index into spec.weights(); -1 before the first step
    failed_checks: int = 0
    iterations: int = 0
    confirmed: bool = False  # confirm-rollout gates passed
    begun: bool = False  # pre-rollout hooks passed, first weight set
    finished: bool = False  # the promotion or rollback of a terminal phase is written
    started_at: float | None = _time()
    unready_since: float | None = _time()
    next_analysis_at: float | None = _time()
    last_analysis_at: float | None = _time()
    last_analysis: dict[str, Any] | None = None
    message: str = ""
    canary_serves: str = ""  # Standard: what the canary serves, when the stable does not (CanaryView.serves)

    def to_dict(self) -> dict[str, Any]:
        return {key: (str(value) if key == "phase" else value) for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RolloutState:
        if not data:
            return cls()
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["phase"] = Phase(known.get("phase", Phase.IDLE))
        return cls(**known)

    def analysis(self) -> AnalysisResult | None:
        return AnalysisResult.from_dict(self.last_analysis) if self.last_analysis else None


# --- actions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetWeight:
    weight: int


@dataclass(frozen=True)
class Promote:
    pass


@dataclass(frozen=True)
class Rollback:
    pass


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    warning: bool = False


Action = SetWeight | Promote | Rollback | Event


@dataclass(frozen=True)
class HookAnswer:
    name: str
    ok: bool  # a 2xx answer
    detail: str


@dataclass(frozen=True)
class Gathered:
    hooks: dict[HookType, list[HookAnswer]] = field(default_factory=dict)
    analysis: AnalysisResult | None = None


@dataclass(frozen=True)
class Transition:
    state: RolloutState
    actions: list[Action] = field(default_factory=list)


# --- the machine ----------------------------------------------------------------------------------


def adopt(state: RolloutState, view: CanaryView, now: float) -> RolloutState:
    """The state for this view: a canary not seen before (or after a finished rollout) starts over."""
    if not view.present:
        return state
    same = state.checksum == view.checksum and state.canary == view.canary
    if same and not (state.phase in TERMINAL and state.finished) and state.phase != Phase.IDLE:
        return state
    if same and state.phase == Phase.FAILED and state.finished and view.weight == 0:
        # Rolled back to 0% and left there (Knative without a stable spec to restore): the
        # same canary at 0% is that rollback, not a new rollout to start.
        return state
    return RolloutState(
        Phase.PROGRESSING, view.canary, view.checksum, view.weight, started_at=now,
        message=f"canary {view.canary} found at {view.weight}%",
        canary_serves=view.canary_serves if view.canary_serves != view.serves else "",
    )  # fmt: skip


def needs(state: RolloutState, spec: AnalysisSpec, view: CanaryView, now: float) -> frozenset[Need]:
    state = adopt(state, view, now)
    if not view.present or state.phase not in ACTIVE or not view.ready:
        return frozenset()
    if state.next_analysis_at is not None and now < state.next_analysis_at:
        return frozenset()
    if not state.confirmed and spec.hooks("confirm-rollout"):
        return frozenset({Need.CONFIRM_ROLLOUT})
    if not state.begun:
        return frozenset({Need.PRE_ROLLOUT}) if spec.hooks("pre-rollout") else frozenset()
    wanted = {Need.METRICS}
    if spec.hooks("rollback"):
        wanted.add(Need.ROLLBACK_HOOK)
    if state.step >= len(spec.weights()) - 1 and spec.hooks("confirm-promotion"):  # >=: the steps may shrink
        wanted.add(Need.CONFIRM_PROMOTION)
    return frozenset(wanted)


def _answers(gathered: Gathered, hook_type: HookType) -> tuple[bool, str]:
    """All answered 2xx, and the refusals in words."""
    answers = gathered.hooks.get(hook_type, [])
    refused = [f"{answer.name}: {answer.detail}" for answer in answers if not answer.ok]
    return not refused, "; ".join(refused)


def _fail(state: RolloutState, reason: str, message: str) -> Transition:
    failed = replace(state, phase=Phase.FAILED, finished=False, message=message)
    return Transition(failed, [Rollback(), Event(reason, message, warning=True)])


def _without_canary(state: RolloutState, view: CanaryView) -> Transition:
    if state.phase not in ACTIVE:
        return Transition(state)
    if view.promoted(state.canary, state.checksum, state.canary_serves):
        message = f"canary {state.canary} was promoted outside the analysis"
        return Transition(
            replace(state, phase=Phase.SUCCEEDED, finished=True, message=message), [Event("Promoted", message)]
        )
    message = f"canary {state.canary} was removed outside the analysis (rolled back)"
    return Transition(
        replace(state, phase=Phase.FAILED, finished=True, message=message), [Event("RolledBack", message, True)]
    )


def _redrive(state: RolloutState) -> Transition:
    """A terminal phase whose write did not land (an API error, a restart): write it again."""
    action: Action = Promote() if state.phase == Phase.SUCCEEDED else Rollback()
    return Transition(state, [action])


def _wait_ready(state: RolloutState, spec: AnalysisSpec, view: CanaryView, now: float) -> Transition:
    since = state.unready_since if state.unready_since is not None else now
    if now - since >= spec.progress_deadline_seconds:
        message = f"canary {view.canary} not ready for {spec.progress_deadline} (progress deadline)"
        return _fail(replace(state, unready_since=since), "ProgressDeadlineExceeded", message)
    message = f"waiting for canary {view.canary} to be ready"
    return Transition(replace(state, unready_since=since, message=message))


def _begin(state: RolloutState, spec: AnalysisSpec, gathered: Gathered, now: float) -> Transition:
    if not state.confirmed:
        ok, refused = _answers(gathered, "confirm-rollout")
        if not ok:
            message = f"confirm-rollout holds the start: {refused}"
            held = replace(state, phase=Phase.PAUSED, next_analysis_at=now + spec.interval_seconds, message=message)
            return Transition(held)
        state = replace(state, confirmed=True, phase=Phase.PROGRESSING)
        if spec.hooks("confirm-rollout") and spec.hooks("pre-rollout"):
            return Transition(replace(state, message="confirm-rollout passed"))  # pre-rollout on the next step
    ok, refused = _answers(gathered, "pre-rollout")
    if not ok:
        failed = state.failed_checks + 1
        state = replace(state, failed_checks=failed, next_analysis_at=now + spec.interval_seconds)
        if failed >= spec.threshold:
            return _fail(state, "RolledBack", f"pre-rollout hooks failed {failed} times: {refused}")
        return Transition(replace(state, message=f"pre-rollout failed ({failed}/{spec.threshold}): {refused}"))
    first = spec.weights()[0]
    message = f"analysis started: canary {state.canary} at {first}%"
    begun = replace(
        state, begun=True, step=0, weight=first, next_analysis_at=now + spec.interval_seconds, message=message
    )
    return Transition(begun, [SetWeight(first), Event("Started", message)])


def _after_pass(state: RolloutState, spec: AnalysisSpec, gathered: Gathered) -> Transition:
    weights = spec.weights()
    if state.weight in spec.manual_gates:
        message = f"held at the manual gate at {state.weight}%: promote with `servekit-canary promote`"
        return Transition(replace(state, phase=Phase.PAUSED, message=message))
    if state.step < len(weights) - 1:
        weight = weights[state.step + 1]
        message = f"analysis passed at {state.weight}%: canary {state.canary} to {weight}%"
        advanced = replace(state, phase=Phase.PROGRESSING, step=state.step + 1, weight=weight, message=message)
        return Transition(advanced, [SetWeight(weight), Event("Advanced", message)])
    ok, refused = _answers(gathered, "confirm-promotion")
    if not ok:
        return Transition(
            replace(state, phase=Phase.PAUSED, message=f"confirm-promotion holds the promotion: {refused}")
        )
    message = f"analysis passed at {state.weight}%: canary {state.canary} promoted"
    return Transition(
        replace(state, phase=Phase.SUCCEEDED, finished=False, message=message), [Promote(), Event("Promoted", message)]
    )


def _analyse(state: RolloutState, spec: AnalysisSpec, gathered: Gathered, now: float) -> Transition:
    rollback_answers = gathered.hooks.get("rollback", [])
    asked = [answer.name for answer in rollback_answers if answer.ok]
    if asked:
        return _fail(state, "RolledBack", f"rolled back: the rollback hook {', '.join(asked)} asked for it")
    result = gathered.analysis or AnalysisResult()
    state = replace(
        state, iterations=state.iterations + 1, last_analysis=result.to_dict(), last_analysis_at=now,
        next_analysis_at=now + spec.interval_seconds,
    )  # fmt: skip
    if result.passed:
        return _after_pass(state, spec, gathered)
    failed = state.failed_checks + 1
    state = replace(state, failed_checks=failed)
    summary = result.summary() or "no analysis result"
    if failed >= spec.threshold:
        return _fail(state, "RolledBack", f"rolled back after {failed} failed checks: {summary}")
    message = f"analysis failed ({failed}/{spec.threshold}) at {state.weight}%: {summary}"
    return Transition(replace(state, message=message), [Event("AnalysisFailed", message, warning=True)])


def advance(state: RolloutState, spec: AnalysisSpec, view: CanaryView, gathered: Gathered, now: float) -> Transition:
    state = adopt(state, view, now)
    if not view.present:
        return _without_canary(state, view)
    if state.phase in TERMINAL:
        return _redrive(state) if not state.finished else Transition(state)
    if not view.ready:
        return _wait_ready(state, spec, view, now)
    state = replace(state, unready_since=None)
    if state.next_analysis_at is not None and now < state.next_analysis_at:
        return Transition(state)
    if not (state.confirmed and state.begun):
        return _begin(state, spec, gathered, now)
    return _analyse(state, spec, gathered, now)


def finished(state: RolloutState) -> RolloutState:
    """The state once the actions of its transition are written."""
    return replace(state, finished=True) if state.phase in TERMINAL else state
