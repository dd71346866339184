"""The canary history of one InferenceService: what each change wrote, so any of it can be restored.

Kept in a ConfigMap ``<isvc>-canary-history`` beside the InferenceService (labels
``app.kubernetes.io/managed-by: servekit-canary`` and ``servekit.dev/inferenceservice: <isvc>``),
data key ``history.json``: a JSON array, oldest first. Each entry has an integer ``revision``,
``time``, ``action`` and the ``predictor`` and ``canary`` specs the change wrote.

The same ConfigMap keeps the state of a ``servekit-canary run`` under ``rollout.json``. Not on the
InferenceService: KServe copies its annotations into the predictor's pod template (Standard) and
revision template (Knative), so every saved state would restart the pods or make a new revision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from predictor.canary.isvc import CANARY_PERCENT
from predictor.kube_object import Obj

DATA_KEY = "history.json"
ROLLOUT_KEY = "rollout.json"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "servekit-canary"
ISVC_LABEL = "servekit.dev/inferenceservice"
# A ConfigMap holds at most 1 MiB; the oldest entries go first.
MAX_ENTRIES = 50
ACTIONS = ("baseline", "start", "set-weight", "promote", "rollback", "restore")


class HistoryError(ValueError):
    """The history is unreadable, or has no entry of the asked revision."""


def config_map_name(isvc: str) -> str:
    return f"{isvc}-canary-history"


def timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Entry:
    revision: int
    time: str
    action: str
    predictor: Obj
    canary: list[Obj] | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "time": self.time,
            "action": self.action,
            "predictor": self.predictor,
            "canary": self.canary,
            "message": self.message,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Entry:
        if not isinstance(data, dict):
            raise HistoryError(f"history entry {data!r} is not an object")
        missing = [key for key in ("revision", "time", "action", "predictor") if key not in data]
        if missing or not isinstance(data["revision"], int) or not isinstance(data["predictor"], dict):
            raise HistoryError(f"history entry {data!r} needs an integer revision, time, action and a predictor object")
        known = {"revision", "time", "action", "predictor", "canary", "message"}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(
            data["revision"], str(data["time"]), str(data["action"]), data["predictor"], data.get("canary"),
            str(data.get("message", "")), extra,
        )  # fmt: skip


def _loaded(text: str, key: str, expected: type, described: str) -> Any:
    """The JSON value of one data key, of the expected type."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HistoryError(f"{key} is not valid JSON: {exc}") from None
    if not isinstance(data, expected):
        raise HistoryError(f"{key} must be {described}, got {type(data).__name__}")
    return data


def parse(text: str | None) -> list[Entry]:
    if not text:
        return []
    return [Entry.from_dict(item) for item in _loaded(text, DATA_KEY, list, "a JSON array")]


def dump(entries: list[Entry]) -> str:
    return json.dumps([entry.to_dict() for entry in entries], indent=1, sort_keys=False)


def entry_for(entries: list[Entry], action: str, isvc: Obj, now: float, message: str = "") -> Entry:
    """The next entry: the specs the InferenceService holds after ``action``."""
    if action not in ACTIONS:
        raise HistoryError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    spec = isvc.get("spec", {})
    revision = (entries[-1].revision + 1) if entries else 1
    return Entry(revision, timestamp(now), action, spec.get("predictor", {}), spec.get("canary"), message)


def appended(entries: list[Entry], entry: Entry) -> list[Entry]:
    return [*entries, entry][-MAX_ENTRIES:]


def find(entries: list[Entry], revision: int) -> Entry:
    for entry in entries:
        if entry.revision == revision:
            return entry
    known = ", ".join(str(e.revision) for e in entries) or "none"
    raise HistoryError(f"no history entry with revision {revision}; revisions: {known}")


def last_stable_predictor(entries: list[Entry]) -> Obj | None:
    """The predictor of the last entry that served all traffic itself (no canary share on it)."""
    for entry in reversed(entries):
        if CANARY_PERCENT not in entry.predictor and not entry.canary:
            return entry.predictor
    return None


def config_map(namespace: str, isvc: str, entries: list[Entry] | None = None, rollout: Obj | None = None) -> Obj:
    """The ConfigMap with the entries and/or the run state given (a merge patch keeps the other key)."""
    data = {DATA_KEY: dump(entries)} if entries is not None else {}
    if rollout is not None:
        data[ROLLOUT_KEY] = json.dumps(rollout, sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(isvc),
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, ISVC_LABEL: isvc},
        },
        "data": data,
    }


def parse_rollout(text: str | None) -> Obj | None:
    if not text:
        return None
    data: Obj = _loaded(text, ROLLOUT_KEY, dict, "a JSON object")
    return data
