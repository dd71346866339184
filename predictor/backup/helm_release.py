"""Helm's release records, read without Helm (pure).

Helm keeps each revision of a release in a Secret ``sh.helm.release.v1.<name>.v<revision>`` of type
``helm.sh/release.v1``, labelled ``owner=helm``, ``name``, ``version`` and ``status``. Its
``data.release`` is, as the API returns it, base64 of the string Helm stored: base64 of the gzip of
the release as JSON (``name``, ``namespace``, ``version``, ``info``, ``chart``, ``config``,
``manifest``, ``hooks``). ``config`` holds the values the user gave, ``chart`` the whole chart:
``metadata`` (Chart.yaml), ``values`` (values.yaml), ``schema``, ``templates`` and ``files``
(crds/ among them), the last three base64. Subcharts are not kept: Helm serialises a chart without
its dependencies.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import yaml

from predictor.kube_object import Obj

SECRET_TYPE = "helm.sh/release.v1"
GZIP_MAGIC = b"\x1f\x8b\x08"


# Helm's rule for release names (a DNS subdomain, at most 53 characters).
RELEASE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class ReleaseError(ValueError):
    """A release record that cannot be decoded or lacks what a restore needs."""


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ReleaseError(f"{what}: expected base64 text, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReleaseError(f"{what}: not base64 ({exc})") from None


def decode_secret(secret: Obj) -> Obj:
    """The release a ``helm.sh/release.v1`` Secret (as ``kubectl get -o json`` shows it) holds."""
    name = secret.get("metadata", {}).get("name", "?")
    if secret.get("type") != SECRET_TYPE:
        raise ReleaseError(f"Secret {name} is of type {secret.get('type')!r}, not {SECRET_TYPE}")
    stored = _b64(secret.get("data", {}).get("release"), f"Secret {name} data.release")
    packed = _b64(stored.decode("ascii", "replace"), f"Secret {name} release record")
    try:
        # Helm gzips the record; it reads plain JSON too, and so does this.
        text = gzip.decompress(packed) if packed.startswith(GZIP_MAGIC) else packed
        release = json.loads(text)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise ReleaseError(f"Secret {name}: the release record is not gzip'd JSON ({exc})") from None
    if not isinstance(release, dict) or not isinstance(release.get("chart"), dict):
        raise ReleaseError(f"Secret {name}: the release record has no chart")
    # The name becomes a folder of the backup: anyone who may write Secrets in the namespace
    # could otherwise name one "../../x" and have the backup write there.
    release_name = release.get("name")
    if not isinstance(release_name, str) or len(release_name) > 53 or not RELEASE_NAME.fullmatch(release_name):
        raise ReleaseError(f"Secret {name}: release name {release_name!r} is not a Helm release name")
    return release


@dataclass(frozen=True)
class Revision:
    """One revision of a release, as `helm history` lists it."""

    revision: int
    status: str
    chart_version: str
    updated: str
    description: str

    def to_dict(self) -> Obj:
        return {
            "revision": self.revision,
            "status": self.status,
            "chartVersion": self.chart_version,
            "updated": self.updated,
            "description": self.description,
        }


def revision_of(release: Obj) -> Revision:
    info = release.get("info") or {}
    return Revision(
        int(release.get("version") or 0),
        str(info.get("status", "unknown")),
        str(release["chart"].get("metadata", {}).get("version", "")),
        str(info.get("last_deployed", "")),
        str(info.get("description", "")),
    )


@dataclass(frozen=True)
class Release:
    """What a backup keeps of one release: its deployed revision and the list of revisions."""

    record: Obj
    history: list[Revision] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.record["name"])

    @property
    def chart(self) -> Obj:
        chart: Obj = self.record["chart"]
        return chart

    @property
    def values(self) -> Obj:
        """The values the user gave (``helm get values``), not the chart's defaults."""
        return dict(self.record.get("config") or {})

    def summary(self) -> Obj:
        metadata = self.chart.get("metadata", {})
        info = self.record.get("info") or {}
        return {
            "name": self.name,
            "namespace": self.record.get("namespace"),
            "revision": int(self.record.get("version") or 0),
            "status": info.get("status"),
            "chart": {
                "name": metadata.get("name"),
                "version": metadata.get("version"),
                "appVersion": metadata.get("appVersion"),
            },
            "firstDeployed": info.get("first_deployed"),
            "lastDeployed": info.get("last_deployed"),
            "description": info.get("description"),
            "history": [revision.to_dict() for revision in self.history],
        }

    def subcharts(self) -> list[str]:
        """Dependencies Chart.yaml declares: the record does not carry them."""
        return [str(d.get("name")) for d in self.chart.get("metadata", {}).get("dependencies") or []]


def latest_releases(records: list[Obj]) -> list[Release]:
    """One Release per name: the deployed revision, or the newest one when none is deployed.

    A release whose newest revision is ``uninstalled`` (kept with ``--keep-history``) is left out:
    it has nothing deployed to restore.
    """
    by_name: dict[str, list[Obj]] = {}
    for record in records:
        by_name.setdefault(str(record.get("name")), []).append(record)
    releases = []
    for name in sorted(by_name):
        revisions = sorted(by_name[name], key=lambda r: int(r.get("version") or 0))
        if (revisions[-1].get("info") or {}).get("status") == "uninstalled":
            continue
        deployed = [r for r in revisions if (r.get("info") or {}).get("status") == "deployed"]
        chosen = deployed[-1] if deployed else revisions[-1]
        releases.append(Release(chosen, [revision_of(r) for r in revisions]))
    return releases


def chart_files(chart: Obj) -> dict[str, bytes]:
    """The chart's files, by path inside the chart folder, as Helm would load them again."""
    metadata = chart.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        raise ReleaseError("the release's chart has no metadata (Chart.yaml)")
    files: dict[str, bytes] = {
        "Chart.yaml": yaml.safe_dump(metadata, sort_keys=False).encode(),
        "values.yaml": yaml.safe_dump(chart.get("values") or {}, sort_keys=False).encode(),
    }
    if chart.get("schema"):
        files["values.schema.json"] = _b64(chart["schema"], "chart schema")
    for group in ("templates", "files"):
        for item in chart.get(group) or []:
            path = str(item.get("name", ""))
            if not path or path.startswith("/") or ".." in path.split("/"):
                raise ReleaseError(f"chart {group} entry {path!r} is not a relative path inside the chart")
            files[path] = _b64(item.get("data", ""), f"chart file {path}")
    return files
