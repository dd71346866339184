"""The Kubernetes edge: InferenceServices, the history ConfigMap and Events, with the official client.

Every write is a JSON merge patch that carries the object's ``metadata.resourceVersion``, so the
API server refuses it (409) when someone else wrote in between; the change is then re-applied to
a fresh read, up to ``CONFLICT_RETRIES`` times. A change that leaves the object as it is writes
nothing, so each one is idempotent.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from predictor.canary import history
from predictor.canary.history import Entry
from predictor.canary.rollout import ApiError, Change, HistoryChange
from predictor.kube_object import Obj

logger = logging.getLogger("predictor.canary")

ISVC_GROUP, ISVC_VERSION, ISVC_PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
ANALYSIS_GROUP, ANALYSIS_VERSION, ANALYSIS_PLURAL = "servekit.dev", "v1alpha1", "canaryanalyses"
MERGE_PATCH = "application/merge-patch+json"
CONFLICT_RETRIES = 5
COMPONENT = "servekit-canary"


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns ``old`` into ``new`` (lists are replaced whole)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return copy.deepcopy(new)
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = copy.deepcopy(value)
        elif old[key] != value:
            patch[key] = (
                merge_patch(old[key], value)
                if isinstance(value, dict) and isinstance(old[key], dict)
                else copy.deepcopy(value)
            )
    return patch


def api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A client for the in-cluster service account, or for a kubeconfig (``$KUBECONFIG``, ~/.kube/config)."""
    from kubernetes import client, config

    loader: Any = config  # the loaders are untyped
    try:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            loader.load_incluster_config()
            return client.ApiClient()
        return loader.new_client_from_config(config_file=kubeconfig, context=context)
    except (config.ConfigException, OSError) as exc:
        raise ApiError(f"no Kubernetes credentials: {exc} (give --kubeconfig or set KUBECONFIG)") from None


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    if status is None:
        return f"cannot reach the Kubernetes API: {type(exc).__name__}: {exc}"
    try:
        message = json.loads(getattr(exc, "body", "") or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"HTTP {status} {getattr(exc, 'reason', '')}: {message or getattr(exc, 'body', '')}".strip()


def _errors() -> tuple[type[Exception], ...]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    return (ApiException, HTTPError)


class KubeInferenceServices:
    def __init__(self, client: Any) -> None:
        from kubernetes import client as k8s

        self._api: Any = k8s.CustomObjectsApi(client)

    def get(self, namespace: str, name: str) -> Obj:
        try:
            obj: Obj = self._api.get_namespaced_custom_object(ISVC_GROUP, ISVC_VERSION, namespace, ISVC_PLURAL, name)
        except _errors() as exc:
            if getattr(exc, "status", None) == 404:
                raise ApiError(f"InferenceService {namespace}/{name} not found") from None
            raise ApiError(f"reading InferenceService {namespace}/{name}: {_describe(exc)}") from None
        return obj

    def update(self, namespace: str, name: str, change: Change) -> Obj:
        for _ in range(CONFLICT_RETRIES):
            current = self.get(namespace, name)
            changed = change(copy.deepcopy(current))
            if changed is None or changed == current:
                return current
            patch = merge_patch(current, changed)
            patch.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                written: Obj = self._api.patch_namespaced_custom_object(
                    ISVC_GROUP, ISVC_VERSION, namespace, ISVC_PLURAL, name, patch, _content_type=MERGE_PATCH
                )
            except _errors() as exc:
                if getattr(exc, "status", None) == 409:
                    logger.info(
                        "InferenceService %s/%s changed meanwhile (409); retrying on a fresh read", namespace, name
                    )
                    continue
                raise ApiError(f"writing InferenceService {namespace}/{name}: {_describe(exc)}") from None
            return written
        raise ApiError(f"InferenceService {namespace}/{name} kept changing: {CONFLICT_RETRIES} conflicts in a row")


class KubeHistory:
    """The ``<isvc>-canary-history`` ConfigMap: the history entries, and the state of a ``run``."""

    def __init__(self, client: Any) -> None:
        from kubernetes import client as k8s

        self._api: Any = k8s.CoreV1Api(client)

    def _read(self, namespace: str, isvc: str) -> tuple[dict[str, str], Any]:
        """The ConfigMap's data and metadata (None when there is no ConfigMap yet)."""
        name = history.config_map_name(isvc)
        try:
            found = self._api.read_namespaced_config_map(name, namespace)
        except _errors() as exc:
            if getattr(exc, "status", None) == 404:
                return {}, None
            raise ApiError(f"reading ConfigMap {namespace}/{name}: {_describe(exc)}") from None
        return dict(found.data or {}), found.metadata

    def read(self, namespace: str, isvc: str) -> list[Entry]:
        return history.parse(self._read(namespace, isvc)[0].get(history.DATA_KEY))

    def read_rollout(self, namespace: str, isvc: str) -> dict[str, Any] | None:
        return history.parse_rollout(self._read(namespace, isvc)[0].get(history.ROLLOUT_KEY))

    def update(self, namespace: str, isvc: str, change: HistoryChange) -> list[Entry]:
        written: list[list[Entry]] = []

        def body(data: dict[str, str]) -> Obj:
            written[:] = [change(history.parse(data.get(history.DATA_KEY)))]
            return history.config_map(namespace, isvc, entries=written[0])

        self._write(namespace, isvc, body)
        return written[0]

    def write_rollout(self, namespace: str, isvc: str, state: dict[str, Any]) -> None:
        self._write(namespace, isvc, lambda _: history.config_map(namespace, isvc, rollout=state))

    def _write(self, namespace: str, isvc: str, body_for: Callable[[dict[str, str]], Obj]) -> None:
        """Create the ConfigMap or merge-patch the keys ``body_for(current data)`` gives, re-reading
        on a conflict (the other key is left as it is)."""
        name = history.config_map_name(isvc)
        for _ in range(CONFLICT_RETRIES):
            data, meta = self._read(namespace, isvc)
            body = body_for(data)
            try:
                if meta is None:
                    self._api.create_namespaced_config_map(namespace, body)
                else:
                    if meta.resource_version:  # the API server always sets it; a mock may not
                        body["metadata"]["resourceVersion"] = meta.resource_version
                    self._api.patch_namespaced_config_map(name, namespace, body, _content_type=MERGE_PATCH)
            except _errors() as exc:
                if getattr(exc, "status", None) == 409:  # written or created meanwhile: read again
                    continue
                raise ApiError(f"writing ConfigMap {namespace}/{name}: {_describe(exc)}") from None
            return
        raise ApiError(f"ConfigMap {namespace}/{name} kept changing: {CONFLICT_RETRIES} conflicts in a row")


class KubeEvents:
    """core/v1 Events on the InferenceService (``kubectl describe`` and ``kubectl events`` show them)."""

    def __init__(self, client: Any) -> None:
        from kubernetes import client as k8s

        self._api: Any = k8s.CoreV1Api(client)
        self._instance = os.environ.get("POD_NAME") or socket.gethostname()

    def record(self, target: Obj, reason: str, message: str, warning: bool = False) -> None:
        meta = target.get("metadata", {})
        namespace = meta.get("namespace", "default")
        now = history.timestamp(time.time())
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            # Named as client-go names events: the object's name and a unique hex suffix.
            "metadata": {"name": f"{meta.get('name', 'isvc')}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": target.get("apiVersion"),
                "kind": target.get("kind"),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._api.create_namespaced_event(namespace, body)
        except _errors() as exc:  # an event is worth a warning in the log, never a failed rollout
            logger.warning(
                "could not record event %s on %s/%s: %s", reason, namespace, meta.get("name"), _describe(exc)
            )
