"""In-memory edges for the canary tool's tests.

These implement the same small protocols as the Kubernetes edge (predictor/canary/rollout.py:
InferenceServiceStore, HistoryStore, EventRecorder, MetricSource, WebhookSender). They are an
injected edge, not an imitation of Kubernetes: objects are plain dicts with a resourceVersion
counter so that conflicts (409) and their retries can be provoked on purpose. What only a real API
server can show (admission webhooks, KServe's controller reacting, RBAC) belongs to the cluster
tests on the control plane.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from predictor.canary.history import Entry
from predictor.canary.rollout import ApiError, Change, Edges, HistoryChange, MetricsUnavailable
from predictor.canary.spec import Webhook
from predictor.canary.state import HookAnswer
from predictor.kube_object import Obj

CONFLICT_RETRIES = 5


class Conflict(Exception):
    pass


@dataclass
class MemoryInferenceServices:
    objects: dict[tuple[str, str], Obj] = field(default_factory=dict)
    writes: int = 0
    conflicts: int = 0
    # Called between the read and the write of an update, once per entry: a concurrent writer.
    interfere: list[Callable[[Obj], None]] = field(default_factory=list)
    # KServe's controller, played by the test: called on the stored object before each read.
    kserve: Callable[[Obj], None] | None = None

    def add(self, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "models")
        meta["resourceVersion"] = "1"
        meta.setdefault("generation", 1)
        self.objects[(meta["namespace"], meta["name"])] = copy.deepcopy(obj)
        return obj

    def get(self, namespace: str, name: str) -> Obj:
        if (namespace, name) not in self.objects:
            raise ApiError(f"InferenceService {namespace}/{name} not found")
        if self.kserve is not None:
            self.kserve(self.objects[(namespace, name)])
        return copy.deepcopy(self.objects[(namespace, name)])

    def write(self, namespace: str, name: str, obj: Obj, expected_version: str) -> Obj:
        stored = self.objects[(namespace, name)]
        if stored["metadata"]["resourceVersion"] != expected_version:
            raise Conflict()
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(int(expected_version) + 1)
        if obj.get("spec") != stored.get("spec"):
            obj["metadata"]["generation"] = stored["metadata"].get("generation", 1) + 1
        self.objects[(namespace, name)] = obj
        self.writes += 1
        return copy.deepcopy(obj)

    def update(self, namespace: str, name: str, change: Change) -> Obj:
        for _ in range(CONFLICT_RETRIES):
            current = self.get(namespace, name)
            changed = change(copy.deepcopy(current))
            if changed is None or changed == current:
                return current
            if self.interfere:
                self.interfere.pop(0)(self.objects[(namespace, name)])
                stored = self.objects[(namespace, name)]["metadata"]
                stored["resourceVersion"] = str(int(stored["resourceVersion"]) + 1)
            try:
                return self.write(namespace, name, changed, current["metadata"]["resourceVersion"])
            except Conflict:
                self.conflicts += 1
        raise ApiError(f"InferenceService {namespace}/{name} kept changing")

    def set_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """What KServe's controller would write; the tests play that part."""
        self.objects[(namespace, name)]["status"] = copy.deepcopy(status)


@dataclass
class MemoryHistory:
    entries: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)
    rollouts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def read(self, namespace: str, isvc: str) -> list[Entry]:
        return list(self.entries.get((namespace, isvc), []))

    def update(self, namespace: str, isvc: str, change: HistoryChange) -> list[Entry]:
        changed = change(self.read(namespace, isvc))
        self.entries[(namespace, isvc)] = list(changed)
        return changed

    def read_rollout(self, namespace: str, isvc: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.rollouts.get((namespace, isvc)))

    def write_rollout(self, namespace: str, isvc: str, state: dict[str, Any]) -> None:
        self.rollouts[(namespace, isvc)] = copy.deepcopy(state)


@dataclass
class RecordedEvent:
    target: str
    reason: str
    message: str
    warning: bool


@dataclass
class MemoryEvents:
    events: list[RecordedEvent] = field(default_factory=list)

    def record(self, target: Obj, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(RecordedEvent(target["metadata"]["name"], reason, message, warning))

    def reasons(self) -> list[str]:
        return [event.reason for event in self.events]


@dataclass
class TableMetrics:
    """Answers each query with the value of the first key it contains (None: no series)."""

    answers: dict[str, float | None] = field(default_factory=dict)
    down: bool = False
    asked: list[str] = field(default_factory=list)

    def values(self, queries: Mapping[str, str]) -> dict[str, float | None]:
        return {key: self._value(promql) for key, promql in queries.items()}

    def _value(self, promql: str) -> float | None:
        self.asked.append(promql)
        if self.down:
            raise MetricsUnavailable("Prometheus at http://127.0.0.1:9 cannot be reached: connection refused")
        for key, value in self.answers.items():
            if key in promql:
                return value
        return None


@dataclass
class ScriptedWebhooks:
    """Answers by hook name: True is a 2xx, False anything else (default True)."""

    answers: dict[str, bool] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def send(self, hook: Webhook, payload: dict[str, Any]) -> HookAnswer:
        self.calls.append((hook.name, payload))
        ok = self.answers.get(hook.name, True)
        return HookAnswer(hook.name, ok, "HTTP 200" if ok else "HTTP 403 not now")

    def called(self, name: str) -> int:
        return sum(1 for called, _ in self.calls if called == name)


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class MemoryEdges:
    isvcs: MemoryInferenceServices = field(default_factory=MemoryInferenceServices)
    history: MemoryHistory = field(default_factory=MemoryHistory)
    events: MemoryEvents = field(default_factory=MemoryEvents)
    metrics: TableMetrics = field(default_factory=TableMetrics)
    webhooks: ScriptedWebhooks = field(default_factory=ScriptedWebhooks)
    clock: Clock = field(default_factory=Clock)

    def edges(self) -> Edges:
        return Edges(self.isvcs, self.history, self.events, self.metrics, self.webhooks, self.clock, self.clock.advance)


# --- InferenceServices as KServe users write them ----------------------------------------------


def container(storage_uri: str, image: str = "servekit/predictor:0.1.0") -> Obj:
    return {
        "name": "kserve-container",
        "image": image,
        "env": [
            {"name": "STORAGE_URI", "value": storage_uri},
            {"name": "PREDICTOR_MODEL_NAME", "value": "iris"},
        ],
        "ports": [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}],
    }


def standard_isvc(name: str = "iris", stable: str = "v1", namespace: str = "models") -> Obj:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"serving.kserve.io/deploymentMode": "Standard"},
        },
        "spec": {
            "predictor": {
                "name": stable,
                "minReplicas": 2,
                "maxReplicas": 4,
                "labels": {"app.kubernetes.io/component": "predictor"},
                "containers": [container(f"s3://models/{name}/{stable}")],
            }
        },
    }


def knative_isvc(name: str = "iris", namespace: str = "models") -> Obj:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"serving.kserve.io/deploymentMode": "Knative"},
        },
        "spec": {"predictor": {"minReplicas": 1, "containers": [container(f"s3://models/{name}/v1")]}},
    }


def standard_status(canary: str | None, ready: bool = True, percent: int = 0) -> dict[str, Any]:
    statuses = [{"name": canary, "ready": ready, "trafficPercent": percent}] if canary else []
    return {"canaryStatuses": statuses, "observedGeneration": 1}


def knative_reports(created: str, rolled_out: str) -> Callable[[Obj], None]:
    """KServe in Knative mode, once a revision is ready: it has seen the latest generation."""

    def report(obj: Obj) -> None:
        obj["status"] = knative_status(created, created, rolled_out, obj["metadata"]["generation"])

    return report


def knative_status(created: str, ready: str | None, rolled_out: str, generation: int = 1) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "components": {
            "predictor": {
                "latestCreatedRevision": created,
                "latestReadyRevision": ready,
                "latestRolledoutRevision": rolled_out,
                "traffic": [{"revisionName": rolled_out, "tag": "prev", "percent": 90}],
            }
        },
    }
