"""A backup made from what kubectl read out of one namespace.

``hack/backup.sh`` saves kubectl's answers (``kubectl get ... -o json``) in a folder, one file per
kind; a kind whose file is absent was not available (its CRD is not installed). This module turns
them into the files of a backup (``archive`` has the layout).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from predictor import __version__
from predictor.backup import archive
from predictor.backup.helm_release import Release, ReleaseError, chart_files, decode_secret, latest_releases
from predictor.backup.models import ModelStore, record_models
from predictor.backup.objects import (
    CANARY_ANALYSIS,
    HISTORY,
    INFERENCE_SERVICE,
    SERVICE_ACCOUNT,
    Kind,
    clean,
    helm_release,
    required_name,
)
from predictor.kube_object import Obj

# kubectl's answers, by file name in the raw folder.
RAW_FILES = {
    INFERENCE_SERVICE: "inferenceservices.json",
    CANARY_ANALYSIS: "canaryanalyses.json",
    HISTORY: "configmaps.json",
    SERVICE_ACCOUNT: "serviceaccounts.json",
}
RAW_NAMESPACE, RAW_SECRETS, RAW_VERSION = "namespace.json", "secrets.json", "version.json"
# Set by the API server on every namespace; a restore gets its own.
SERVER_NAMESPACE_LABELS = ("kubernetes.io/metadata.name",)

Say = Callable[[str], None]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise archive.ArchiveError(f"cannot read kubectl's answer {path}: {exc}") from None


def _items(raw: Path, name: str) -> list[Obj] | None:
    path = raw / name
    if not path.exists():
        return None
    items: list[Obj] = _read_json(path).get("items") or []
    return sorted(items, key=required_name)


@dataclass(frozen=True)
class Source:
    """Where the backup was taken."""

    namespace: str
    context: str
    server: str


def _versions(raw: Path) -> Obj:
    path = raw / RAW_VERSION
    data = _read_json(path) if path.exists() else {}
    return {
        "kubernetes": (data.get("serverVersion") or {}).get("gitVersion", "unknown"),
        "kubectl": (data.get("clientVersion") or {}).get("gitVersion", "unknown"),
        "servekit": __version__,
    }


def _releases(raw: Path, warn: Say) -> list[Release]:
    records = []
    for secret in _items(raw, RAW_SECRETS) or []:
        try:
            records.append(decode_secret(secret))
        except ReleaseError as exc:
            warn(f"skipping a Helm release record: {exc}")
    return latest_releases(records)


def _accounts(accounts: list[Obj], isvcs: list[Obj], released: set[str]) -> list[Obj]:
    """The ServiceAccounts that InferenceServices outside the backed-up Helm releases run as
    (a release's reinstall makes its own; "default" exists in every namespace)."""
    wanted = set()
    for isvc in isvcs:
        if helm_release(isvc) in released:
            continue
        spec = isvc.get("spec", {})
        predictors = [spec.get("predictor", {})] + [entry.get("predictor", {}) for entry in spec.get("canary") or []]
        wanted |= {p["serviceAccountName"] for p in predictors if p.get("serviceAccountName")}
    wanted.discard("default")
    return [account for account in accounts if required_name(account) in wanted]


def _release_files(release: Release, warn: Say) -> dict[str, bytes]:
    folder = archive.release_dir(release.name)
    if release.subcharts():
        warn(
            f"Helm release {release.name}: its chart has subcharts ({', '.join(release.subcharts())}) that Helm's "
            "release record does not keep; restore it from your chart source instead"
        )
    files = {
        f"{folder}/release.yaml": archive.dump(release.summary()),
        f"{folder}/values.yaml": archive.dump(release.values),
        f"{folder}/manifest.yaml": str(release.record.get("manifest", "")).encode(),
    }
    files |= {f"{folder}/chart/{path}": content for path, content in chart_files(release.chart).items()}
    return files


def _release_entry(release: Release) -> Obj:
    summary = release.summary()
    return {
        "name": release.name,
        "revision": summary["revision"],
        "status": summary["status"],
        "chart": summary["chart"]["name"],
        "chartVersion": summary["chart"]["version"],
        "dir": archive.release_dir(release.name),
    }


def build(raw: Path, source: Source, stores: list[ModelStore], now: datetime, say: Say, warn: Say) -> dict[str, bytes]:
    """The backup's files, by path in the backup folder; ``say`` reports each, ``warn`` what is left out."""
    kinds: dict[Kind, list[Obj]] = {}
    for kind, name in RAW_FILES.items():
        found = _items(raw, name)
        if found is None and kind in (INFERENCE_SERVICE, CANARY_ANALYSIS):
            warn(f"no {kind.kind} objects: the cluster has no {kind.resource} (CRD not installed)")
        kinds[kind] = found or []
    releases = _releases(raw, warn)
    released = {release.name for release in releases}
    kinds[SERVICE_ACCOUNT] = _accounts(kinds[SERVICE_ACCOUNT], kinds[INFERENCE_SERVICE], released)

    files: dict[str, bytes] = {}
    entries = []
    for kind in (INFERENCE_SERVICE, CANARY_ANALYSIS, HISTORY, SERVICE_ACCOUNT):
        for obj in kinds[kind]:
            path = archive.object_path(kind, required_name(obj))
            files[path] = archive.dump(clean(obj))
            entries.append(
                {"kind": kind.kind, "name": required_name(obj), "apiVersion": obj.get("apiVersion"), "file": path}
            )
            say(f"{kind.kind} {required_name(obj)} -> {path}")
    for release in releases:
        files |= _release_files(release, warn)
        revision = release.summary()["revision"]
        say(f"Helm release {release.name} (revision {revision}) -> {archive.release_dir(release.name)}/")
    models = record_models(kinds[INFERENCE_SERVICE], stores)
    for model in models:
        sha = model["sha256"] or "no sha256: no --model-store covers this URI"
        say(f"model {model['uri']} ({model['inferenceService']}, {model['role']}): {sha}")
    files[archive.MODELS] = archive.dump(models)
    files[archive.INDEX] = archive.dump(_index(raw, source, now, entries, releases, len(models)))
    return files


def _index(raw: Path, source: Source, now: datetime, entries: list[Obj], releases: list[Release], models: int) -> Obj:
    namespace = _read_json(raw / RAW_NAMESPACE)
    labels = namespace.get("metadata", {}).get("labels") or {}
    return {
        "apiVersion": archive.API_VERSION,
        "kind": archive.KIND,
        "format": archive.FORMAT,
        "id": f"{source.namespace}-{now:%Y%m%dT%H%M%SZ}",
        "created": f"{now:%Y-%m-%dT%H:%M:%SZ}",
        "source": {
            "context": source.context,
            "server": source.server,
            "namespace": source.namespace,
            "namespaceLabels": {k: v for k, v in labels.items() if k not in SERVER_NAMESPACE_LABELS},
        },
        "versions": _versions(raw),
        "objects": entries,
        "helmReleases": [_release_entry(release) for release in releases],
        "models": models,
    }
