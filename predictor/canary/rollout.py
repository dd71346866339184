"""One reconcile step of a rollout, written against small protocols (Flagger's scheduler).

The CLI's ``run`` and the controller both call ``step``; they differ only in where they keep the
state between steps. The protocols are what a test or another backend implements:

- ``InferenceServiceStore``: get an InferenceService; change it with a function, conflict-safe.
- ``HistoryStore``: read and change the history entries of one InferenceService, and keep the
  state of a ``servekit-canary run`` beside them.
- ``EventRecorder``: record a Kubernetes Event on the InferenceService.
- ``MetricSource``: the numbers PromQL queries return at one instant (None: no data).
- ``WebhookSender``: call one webhook, say whether it answered 2xx.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from predictor.canary import analysis, history, isvc, queries, state
from predictor.canary.history import Entry
from predictor.canary.spec import AnalysisSpec, HookType, Webhook
from predictor.canary.state import Gathered, HookAnswer, Need, RolloutState, Transition
from predictor.kube_object import Obj

logger = logging.getLogger("predictor.canary")

Change = Callable[[Obj], Obj | None]
HistoryChange = Callable[[list[Entry]], list[Entry]]


class ApiError(Exception):
    """The Kubernetes API refused or failed a request; the message names the object and why."""


class MetricsUnavailable(Exception):
    """The metric source could not be asked (no Prometheus, or it answered an error)."""


class InferenceServiceStore(Protocol):
    def get(self, namespace: str, name: str) -> Obj: ...

    def update(self, namespace: str, name: str, change: Change) -> Obj:
        """Apply ``change`` to the current object and write the result, re-reading and re-applying on
        a conflict (HTTP 409); ``change`` returning None writes nothing. Returns the object as stored."""
        ...


class HistoryStore(Protocol):
    def read(self, namespace: str, isvc: str) -> list[Entry]: ...

    def update(self, namespace: str, isvc: str, change: HistoryChange) -> list[Entry]: ...

    def read_rollout(self, namespace: str, isvc: str) -> dict[str, Any] | None:
        """The state ``servekit-canary run`` kept for the InferenceService, if any."""
        ...

    def write_rollout(self, namespace: str, isvc: str, state: dict[str, Any]) -> None: ...


class EventRecorder(Protocol):
    def record(self, target: Obj, reason: str, message: str, warning: bool = False) -> None: ...


class MetricSource(Protocol):
    def values(self, queries: Mapping[str, str]) -> dict[str, float | None]:
        """The single number of each instant query, all evaluated at one instant; None: no series.

        One instant, because the analysis divides one query by another (errors by requests): two
        instants a scrape apart count different requests, and a canary failing every request
        would read as 0.33% successful."""
        ...


class WebhookSender(Protocol):
    def send(self, hook: Webhook, payload: dict[str, Any]) -> HookAnswer: ...


@dataclass
class Edges:
    isvcs: InferenceServiceStore
    history: HistoryStore
    events: EventRecorder
    metrics: MetricSource
    webhooks: WebhookSender
    clock: Callable[[], float] = field(default=time.time)
    sleep: Callable[[float], None] = field(default=time.sleep)


# --- writes that the CLI and the steps share ------------------------------------------------------


def record(edges: Edges, namespace: str, name: str, action: str, written: Obj, message: str = "") -> Entry:
    """Append what a change wrote to the InferenceService's history."""
    now = edges.clock()
    added: list[Entry] = []

    def append(entries: list[Entry]) -> list[Entry]:
        added[:] = [history.entry_for(entries, action, written, now, message)]
        return history.appended(entries, added[0])

    edges.history.update(namespace, name, append)
    return added[0]


def record_baseline(edges: Edges, namespace: str, name: str, current: Obj) -> None:
    """Remember the spec serving all traffic, once per change of it: a Knative rollback restores it."""
    predictor = current.get("spec", {}).get("predictor", {})
    if isvc.CANARY_PERCENT in predictor or current.get("spec", {}).get("canary"):
        return
    if history.last_stable_predictor(edges.history.read(namespace, name)) == predictor:
        return
    record(edges, namespace, name, "baseline", current, "the stable predictor before a canary")


def stable_checksum(entries: list[Entry]) -> str | None:
    stable = history.last_stable_predictor(entries)
    return isvc.predictor_checksum(stable) if stable is not None else None


def change_isvc(edges: Edges, namespace: str, name: str, action: str, change: Change, message: str = "") -> Obj:
    """Write one change and record it in the history; a change that leaves the object as it is
    writes nothing and records nothing, so a repeated command leaves no trace."""
    wrote: list[bool] = []

    def tracked(obj: Obj) -> Obj | None:
        changed = change(obj)
        wrote[:] = [changed is not None and changed != obj]  # the last try is the one that counts
        return changed

    written = edges.isvcs.update(namespace, name, tracked)
    if wrote and wrote[-1]:
        record(edges, namespace, name, action, written, message)
    return written


def do_rollback(edges: Edges, namespace: str, name: str, message: str = "") -> Obj:
    previous = history.last_stable_predictor(edges.history.read(namespace, name))
    return change_isvc(edges, namespace, name, "rollback", lambda obj: isvc.rollback(obj, previous), message)


# --- one step -------------------------------------------------------------------------------------


def payload(view: isvc.CanaryView, current: RolloutState, hook: Webhook, message: str = "") -> dict[str, Any]:
    """Flagger's webhook payload."""
    metadata = {**hook.metadata, "type": hook.type, "weight": str(current.weight), "canary": str(view.canary or "")}
    if message:
        metadata["eventMessage"] = message
    return {
        "name": view.isvc,
        "namespace": view.namespace,
        "phase": str(current.phase),
        "checksum": current.checksum or view.checksum,
        "metadata": metadata,
    }


def _call_hooks(
    edges: Edges, spec: AnalysisSpec, hook_type: HookType, view: isvc.CanaryView, current: RolloutState
) -> list[HookAnswer]:
    return [edges.webhooks.send(hook, payload(view, current, hook)) for hook in spec.hooks(hook_type)]


def _measure(edges: Edges, spec: AnalysisSpec, view: isvc.CanaryView) -> analysis.AnalysisResult:
    try:
        values = edges.metrics.values(analysis.plan(spec, view.variants()))
    except (MetricsUnavailable, queries.TemplateError) as exc:  # templates are checked when the spec is read
        return analysis.unavailable(spec, str(exc))
    return analysis.evaluate(spec, values)


def gather(
    edges: Edges, spec: AnalysisSpec, wanted: frozenset[Need], view: isvc.CanaryView, current: RolloutState
) -> Gathered:
    hooks: dict[HookType, list[HookAnswer]] = {}
    for need in (Need.CONFIRM_ROLLOUT, Need.PRE_ROLLOUT, Need.ROLLBACK_HOOK, Need.CONFIRM_PROMOTION):
        if need in wanted:
            hook_type: HookType = need.value  # type: ignore[assignment]  # the Need values are hook types
            hooks[hook_type] = _call_hooks(edges, spec, hook_type, view, current)
    result = _measure(edges, spec, view) if Need.METRICS in wanted else None
    return Gathered(hooks, result)


def _carry_out(
    edges: Edges, spec: AnalysisSpec, namespace: str, name: str, transition: Transition, view: isvc.CanaryView
) -> None:
    current = transition.state
    for action in transition.actions:
        if isinstance(action, state.SetWeight):
            change_isvc(edges, namespace, name, "set-weight", functools.partial(isvc.set_weight, weight=action.weight))
        elif isinstance(action, state.Promote):
            change_isvc(edges, namespace, name, "promote", isvc.promote, current.message)
        elif isinstance(action, state.Rollback):
            do_rollback(edges, namespace, name, current.message)
        elif isinstance(action, state.Event):
            logger.info("%s/%s %s: %s", namespace, name, action.reason, action.message)
            edges.events.record(edges.isvcs.get(namespace, name), action.reason, action.message, action.warning)
            for hook in spec.hooks("event"):
                edges.webhooks.send(hook, payload(view, current, hook, action.message))


def _settle(edges: Edges, namespace: str, name: str, checksum: str | None) -> None:
    """Knative: finish a rollback once the restored revision is ready."""

    def change(obj: Obj) -> Obj | None:
        return isvc.settle(obj, checksum)

    edges.isvcs.update(namespace, name, change)


def step(edges: Edges, spec: AnalysisSpec, namespace: str, name: str, current: RolloutState) -> RolloutState:
    """One reconcile: read the InferenceService, ask for what the state machine needs, carry out
    its actions; returns the state to keep. A failed write raises ApiError and the caller keeps the
    old state, so the next step redoes it."""
    obj = edges.isvcs.get(namespace, name)
    entries = edges.history.read(namespace, name)
    checksum = stable_checksum(entries)
    view = isvc.view(obj, checksum)
    if view.restoring:
        _settle(edges, namespace, name, checksum)
    elif not view.present:
        record_baseline(edges, namespace, name, obj)
    now = edges.clock()
    wanted = state.needs(current, spec, view, now)
    adopted = state.adopt(current, view, now)
    gathered = gather(edges, spec, wanted, view, adopted)
    transition = state.advance(current, spec, view, gathered, now)
    _carry_out(edges, spec, namespace, name, transition, view)
    return state.finished(transition.state)
