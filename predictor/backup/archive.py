"""The backup folder: its layout, its index, and reading it back with every file checked.

```
index.yaml                        what, when, from which cluster and namespace, versions, the list of files
inferenceservices/<name>.yaml     one object per file, as objects.clean leaves it
canaryanalyses/<name>.yaml
canary-history/<isvc>-canary-history.yaml
serviceaccounts/<name>.yaml       the accounts InferenceServices outside Helm releases run as
helm/<release>/release.yaml       revision, status, chart name and version, the revisions Helm kept
helm/<release>/values.yaml        the values the user gave (`helm get values`)
helm/<release>/manifest.yaml      what that revision deployed, for reading and diffing
helm/<release>/chart/             the chart as Helm stored it in the release record
models.yaml                       each model's URI and the sha256 its manifest names
```

Plain YAML throughout, so a backup can be read and diffed; a `.tar.gz` of the folder is the same
thing in one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from predictor.backup.objects import Kind, ObjectError, kind_of, required_name
from predictor.kube_object import Obj

API_VERSION = "servekit.dev/v1alpha1"
KIND = "Backup"
FORMAT = 1
INDEX = "index.yaml"
MODELS = "models.yaml"
HELM_DIR = "helm"


class ArchiveError(ValueError):
    """The backup folder is missing a file, or one of its files is not what the index says."""


def object_path(kind: Kind, name: str) -> str:
    return f"{kind.folder}/{name}.yaml"


def release_dir(name: str) -> str:
    return f"{HELM_DIR}/{name}"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the history's JSON, notes) as YAML blocks, so they read and diff line by line."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _text)


def dump(data: Any) -> bytes:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True).encode()


@dataclass(frozen=True)
class Backup:
    """A backup read back from its folder; every file the index lists is there and parses."""

    root: Path
    index: Obj
    objects: list[Obj]
    releases: list[Obj]  # the index entries, each with its folder under `dir`
    models: list[Obj]

    @property
    def id(self) -> str:
        return str(self.index["id"])

    @property
    def source(self) -> Obj:
        source: Obj = self.index.get("source") or {}
        return source

    def release_path(self, release: Obj) -> Path:
        return self.root / str(release["dir"])


def _read_yaml(root: Path, relative: str, what: str) -> Any:
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ArchiveError(f"{INDEX} names {relative!r}, which is outside the backup folder")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArchiveError(f"{what}: {relative} is missing from the backup {root}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{what}: cannot read {relative}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ArchiveError(f"{what}: {relative} is not valid YAML: {exc}") from None


def _check_index(index: Any, root: Path) -> Obj:
    if not isinstance(index, dict) or index.get("kind") != KIND or index.get("apiVersion") != API_VERSION:
        raise ArchiveError(f"{root}/{INDEX} is not a servekit backup index (kind {KIND}, apiVersion {API_VERSION})")
    if index.get("format") != FORMAT:
        raise ArchiveError(
            f"{root}/{INDEX}: backup format {index.get('format')!r}; this servekit reads format {FORMAT}"
        )
    for key, kind in (("id", str), ("objects", list), ("helmReleases", list)):
        if not isinstance(index.get(key), kind):
            raise ArchiveError(f"{root}/{INDEX}: {key} is missing or not a {kind.__name__}")
    return index


def _load_object(root: Path, entry: Any) -> Obj:
    if not isinstance(entry, dict) or not {"kind", "name", "file"} <= entry.keys():
        raise ArchiveError(f"{INDEX}: object entry {entry!r} needs kind, name and file")
    obj = _read_yaml(root, str(entry["file"]), f"{entry['kind']} {entry['name']}")
    try:
        if not isinstance(obj, dict):
            raise ObjectError(f"{entry['file']} holds no object")
        kind_of(obj)
        if obj["kind"] != entry["kind"] or required_name(obj) != entry["name"]:
            found = f"{obj['kind']} {required_name(obj)}"
            raise ObjectError(f"{entry['file']} holds {found}, the index says {entry['kind']} {entry['name']}")
        if not isinstance(obj.get("apiVersion"), str):
            raise ObjectError(f"{entry['file']} has no apiVersion")
    except ObjectError as exc:
        raise ArchiveError(str(exc)) from None
    return obj


def _load_release(root: Path, entry: Any) -> Obj:
    if not isinstance(entry, dict) or not {"name", "dir"} <= entry.keys():
        raise ArchiveError(f"{INDEX}: Helm release entry {entry!r} needs name and dir")
    folder = str(entry["dir"])
    values = _read_yaml(root, f"{folder}/values.yaml", f"Helm release {entry['name']}")
    if values is not None and not isinstance(values, dict):
        raise ArchiveError(f"Helm release {entry['name']}: {folder}/values.yaml is not a mapping")
    chart = _read_yaml(root, f"{folder}/chart/Chart.yaml", f"Helm release {entry['name']}")
    if not isinstance(chart, dict) or not chart.get("name"):
        raise ArchiveError(f"Helm release {entry['name']}: {folder}/chart/Chart.yaml has no chart name")
    return dict(entry)


def load(root: Path) -> Backup:
    """Read a backup folder; raise ArchiveError naming the first file that is missing or wrong."""
    if not root.is_dir():
        raise ArchiveError(f"{root} is not a directory")
    index = _check_index(_read_yaml(root, INDEX, "the backup index"), root)
    objects = [_load_object(root, entry) for entry in index["objects"]]
    releases = [_load_release(root, entry) for entry in index["helmReleases"]]
    models = _read_yaml(root, MODELS, "the model list") or []
    if not isinstance(models, list) or not all(isinstance(m, dict) and m.get("uri") for m in models):
        raise ArchiveError(f"{MODELS} is not a list of models with a uri each")
    return Backup(root, index, objects, releases, models)


def write(root: Path, files: dict[str, bytes]) -> None:
    """Write the files under root, which must not hold anything yet."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ArchiveError(f"{root} already exists and is not an empty directory: pick another output")
    inside = root.resolve()
    for relative in files:  # the names come from the cluster's objects: all checked before any write
        if not (root / relative).resolve().is_relative_to(inside):
            raise ArchiveError(f"{relative!r} would be written outside the backup folder {root}")
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
