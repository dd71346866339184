"""The Kubernetes objects a backup holds, as the user wrote them: what is kept, what the server set (pure).

A backed-up object keeps its apiVersion, kind, name, labels, annotations and its content (``spec``
for InferenceServices and CanaryAnalyses, ``data`` for the history ConfigMaps, the pull secrets of a
ServiceAccount). Everything the API server or a controller writes goes: status, uid,
resourceVersion, generation, creationTimestamp, managedFields, finalizers (controllers add theirs
back), ownerReferences (they name owners by uid, and a restored owner gets a new one) and kubectl's
last-applied-configuration copy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from predictor.kube_object import Obj

# Helm's ownership marks: a restored object must name the namespace it now lives in, or a later
# `helm upgrade` refuses to adopt it.
HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
KEPT_METADATA = ("name", "labels", "annotations")


@dataclass(frozen=True)
class Kind:
    """One kind a backup holds: where its files go and which top-level fields are its content."""

    kind: str
    resource: str  # what kubectl is given: plural.group for custom resources
    folder: str
    content: tuple[str, ...]


INFERENCE_SERVICE = Kind("InferenceService", "inferenceservices.serving.kserve.io", "inferenceservices", ("spec",))
CANARY_ANALYSIS = Kind("CanaryAnalysis", "canaryanalyses.servekit.dev", "canaryanalyses", ("spec",))
HISTORY = Kind("ConfigMap", "configmaps", "canary-history", ("data", "binaryData"))
# The `secrets` list is the legacy token Secrets of the account: the cluster makes its own.
SERVICE_ACCOUNT = Kind(
    "ServiceAccount", "serviceaccounts", "serviceaccounts", ("automountServiceAccountToken", "imagePullSecrets")
)
# In the order a restore writes them: accounts before the pods that use them, an InferenceService
# before its history (the controller reads both), the analysis last.
KINDS = (SERVICE_ACCOUNT, INFERENCE_SERVICE, HISTORY, CANARY_ANALYSIS)
KIND_BY_NAME = {kind.kind: kind for kind in KINDS}


class ObjectError(ValueError):
    """An object that is not a Kubernetes object of a kind a backup holds."""


def kind_of(obj: Obj) -> Kind:
    name = obj.get("kind") if isinstance(obj, dict) else None
    if name not in KIND_BY_NAME:
        raise ObjectError(f"kind {name!r} is not one a backup holds ({', '.join(KIND_BY_NAME)})")
    return KIND_BY_NAME[name]


def required_name(obj: Obj) -> str:
    name = obj.get("metadata", {}).get("name")
    if not isinstance(name, str) or not name:
        raise ObjectError(f"{obj.get('kind', 'object')} without metadata.name")
    return name


def clean(obj: Obj) -> Obj:
    """The object as a user would write it: no status, no server-set metadata."""
    kind = kind_of(obj)
    metadata = obj.get("metadata", {})
    kept: Obj = {key: copy.deepcopy(metadata[key]) for key in KEPT_METADATA if metadata.get(key)}
    annotations = {k: v for k, v in kept.get("annotations", {}).items() if k not in DROPPED_ANNOTATIONS}
    if annotations:
        kept["annotations"] = annotations
    else:
        kept.pop("annotations", None)
    cleaned: Obj = {"apiVersion": obj.get("apiVersion"), "kind": kind.kind, "metadata": kept}
    for field in kind.content:
        if field in obj:
            cleaned[field] = copy.deepcopy(obj[field])
    return cleaned


def retarget(obj: Obj, namespace: str) -> Obj:
    """A cleaned object placed in ``namespace`` (Helm's ownership annotation follows it)."""
    moved = copy.deepcopy(obj)
    metadata = moved.setdefault("metadata", {})
    metadata["namespace"] = namespace
    annotations = metadata.get("annotations", {})
    if HELM_RELEASE_NAMESPACE in annotations:
        annotations[HELM_RELEASE_NAMESPACE] = namespace
    return moved


def helm_release(obj: Obj) -> str | None:
    """The Helm release that owns the object, if one does."""
    name = obj.get("metadata", {}).get("annotations", {}).get(HELM_RELEASE_NAME)
    return str(name) if name else None


def _pointer(*parts: str) -> str:
    """A JSON pointer (RFC 6901): label keys hold '/', which is escaped as '~1'."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def patch_ops(wanted: Obj, live: Obj) -> list[Obj]:
    """The JSON patch that gives ``live`` the backed-up content, labels and annotations.

    Content fields are replaced whole, so a field the backup lacks does not survive (a merge would
    keep it); labels and annotations are added or overwritten key by key, so the ones a controller
    or Helm put on the live object stay. An empty list means the object already is as backed up.
    """
    kind = kind_of(wanted)
    ops: list[Obj] = []
    for field in ("labels", "annotations"):
        have = live.get("metadata", {}).get(field) or {}
        want = wanted.get("metadata", {}).get(field) or {}
        if want and not have:
            ops.append({"op": "add", "path": _pointer("metadata", field), "value": want})
            continue
        ops += [
            {"op": "add", "path": _pointer("metadata", field, key), "value": value}
            for key, value in want.items()
            if have.get(key) != value
        ]
    for field in kind.content:
        if field in wanted and live.get(field) != wanted[field]:
            ops.append({"op": "add", "path": _pointer(field), "value": wanted[field]})
        elif field not in wanted and field in live:
            ops.append({"op": "remove", "path": _pointer(field)})
    return ops
