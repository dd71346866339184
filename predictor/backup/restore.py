"""What a restore writes into the target namespace, and what the target cluster must serve first.

Helm releases are installed again from the chart and values in the backup (``helm_restore``), then
every backed-up object is created, or, where it exists (made by that reinstall, or by an earlier
run of the same restore), patched to its backed-up content (``objects.patch_ops``). Running the
same restore twice changes nothing the second time.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from predictor.backup.archive import ArchiveError, Backup
from predictor.backup.objects import KINDS, kind_of, retarget
from predictor.kube_object import Obj

# Set on the target namespace by a restore: a second run of the same backup finds it and goes on
# (an idempotent re-run), where any other non-empty namespace needs --force.
RESTORED_FROM = "servekit.dev/restored-from"


def namespace_manifest(backup: Backup, namespace: str) -> Obj:
    """The target Namespace: the source's labels (e.g. Pod Security levels) and the restore mark."""
    labels = dict(backup.source.get("namespaceLabels") or {})
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": labels, "annotations": {RESTORED_FROM: backup.id}},
    }


def objects_in_order(backup: Backup, namespace: str) -> list[Obj]:
    """The backed-up objects placed in ``namespace``, in the order they are written."""
    rank = {kind.kind: index for index, kind in enumerate(KINDS)}
    ordered = sorted(backup.objects, key=lambda obj: rank[kind_of(obj).kind])
    return [retarget(obj, namespace) for obj in ordered]


def _chart_crds(chart_dir: Path) -> set[tuple[str, str]]:
    """(group/version, plural) of the CRDs a chart's crds/ folder installs."""
    provided = set()
    for path in sorted((chart_dir / "crds").glob("*.y*ml")):
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ArchiveError(f"{path}: cannot read the chart's CRD: {exc}") from None
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc.get("spec", {})
            plural = spec.get("names", {}).get("plural")
            for version in spec.get("versions") or []:
                if version.get("served", True):
                    provided.add((f"{spec.get('group')}/{version.get('name')}", str(plural)))
    return provided


def required_apis(backup: Backup) -> list[tuple[str, str]]:
    """(group/version, plural) the target must serve before the restore, core kinds aside: the
    custom resources of the backed-up objects, less those a backed-up chart installs itself."""
    needed = set()
    for obj in backup.objects:
        kind = kind_of(obj)
        if "/" in obj["apiVersion"]:  # a named group; core kinds ("v1") are always served
            needed.add((str(obj["apiVersion"]), kind.resource.split(".", 1)[0]))
    for release in backup.releases:
        needed -= _chart_crds(backup.release_path(release) / "chart")
    return sorted(needed)
