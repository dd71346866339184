"""Knative Serving's status writer for Knative Services, played by the harness (no Knative runs).

KServe's controller in Knative mode makes a Knative Service (`serving.knative.dev/v1` Service)
per component and reads its status back into the InferenceService (`PropagateStatus`:
`latestCreatedRevisionName`, `latestReadyRevisionName`, `traffic`, the Ready, RoutesReady and
ConfigurationsReady conditions, `observedGeneration`). Without Knative's controller that status
is never written and the InferenceService never becomes Ready. This module writes only that
status, the way Knative would from the Service's own spec:

- a new revision `<service>-NNNNN` for each new `spec.template` (Knative numbers them by its
  Configuration's generation, which moves only when the template changes), ready at once: kwok's
  pods are ready at once too, and no container runs;
- `traffic` resolved from `spec.traffic`: `latestRevision: true` targets go to the latest ready
  revision, named revisions stay, percent and tag as written;
- Ready, ConfigurationsReady and RoutesReady True; `observedGeneration` = `metadata.generation`;
  `url` and `address` as Knative names them.

It writes nothing else: no Configurations, Routes, Revisions or pods (KServe does not read them).
docs/controlplane.md lists it with the other parts the harness plays.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.cluster.cluster import Cluster

POLL_SECONDS = 0.3
CONDITIONS = ("Ready", "ConfigurationsReady", "RoutesReady")


@dataclass
class Revisions:
    """The revisions Knative would have made for one Service: one per distinct template, in order."""

    templates: list[str] = field(default_factory=list)

    def latest_for(self, service: str, template: dict[str, Any]) -> str:
        text = json.dumps(template, sort_keys=True)
        if not self.templates or self.templates[-1] != text:
            self.templates.append(text)
        return f"{service}-{len(self.templates):05d}"


def resolved_traffic(spec_traffic: list[dict[str, Any]], latest_ready: str) -> list[dict[str, Any]]:
    """`status.traffic` as Knative's route reconciler writes it from `spec.traffic`."""
    targets = spec_traffic or [{"latestRevision": True, "percent": 100}]
    resolved = []
    for target in targets:
        entry: dict[str, Any] = {
            "revisionName": latest_ready if target.get("latestRevision") else target["revisionName"],
            "latestRevision": bool(target.get("latestRevision")),
            "percent": target.get("percent", 0),
        }
        if target.get("tag"):
            entry["tag"] = target["tag"]
        resolved.append(entry)
    return resolved


def service_status(service: dict[str, Any], latest: str, time: str) -> dict[str, Any]:
    """The status Knative would write for this Service, its latest revision ready."""
    meta = service["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    return {
        "observedGeneration": meta["generation"],
        "latestCreatedRevisionName": latest,
        "latestReadyRevisionName": latest,
        "traffic": resolved_traffic(service["spec"].get("traffic") or [], latest),
        "url": f"http://{name}.{namespace}.example.com",
        "address": {"url": f"http://{name}.{namespace}.svc.cluster.local"},
        "conditions": [{"type": kind, "status": "True", "lastTransitionTime": time} for kind in CONDITIONS],
    }


def same_status(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Equal but for the conditions' transition times."""

    def comparable(status: dict[str, Any]) -> dict[str, Any]:
        conditions = [(c.get("type"), c.get("status")) for c in status.get("conditions", [])]
        return {**status, "conditions": conditions}

    return comparable(old) == comparable(new)


class KnativeStatusWriter:
    """Writes the status of every Knative Service in one namespace until stopped."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.revisions: dict[str, Revisions] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"knative-status-{namespace}", daemon=True)

    def write_once(self) -> None:
        for service in self.cluster.list("services.serving.knative.dev", self.namespace):
            name = service["metadata"]["name"]
            latest = self.revisions.setdefault(name, Revisions()).latest_for(name, service["spec"]["template"])
            old = service.get("status") or {}
            times = [c.get("lastTransitionTime") for c in old.get("conditions", [])]
            status = service_status(service, latest, times[0] if times else now())
            if not same_status(old, status):
                self.cluster.kubectl(
                    "patch", "services.serving.knative.dev", name, "-n", self.namespace, "--subresource=status",
                    "--type=merge", "-p", json.dumps({"status": status}),
                )  # fmt: skip

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.write_once()
            except AssertionError as error:  # a conflict with KServe's own write: look again
                self.errors.append(str(error))
            self._stop.wait(POLL_SECONDS)

    def __enter__(self) -> KnativeStatusWriter:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.contextmanager
def knative_status(cluster: Cluster, namespace: str) -> Iterator[KnativeStatusWriter]:
    with KnativeStatusWriter(cluster, namespace) as writer:
        yield writer
