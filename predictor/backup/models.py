"""The models an InferenceService serves: their storage URIs, and the sha256 their manifests name.

A servekit model directory holds ``model.yaml`` beside the artifact, and the manifest names the
artifact's sha256 (``predictor.spec``). The backup does not talk to object stores: it reads the
manifest through a local folder that mirrors a storage prefix, given as ``--model-store
URI_PREFIX=DIR`` (a mounted bucket, a PVC's contents, or a copy of the ``model.yaml`` files), so
``s3://models/iris/v2`` with ``--model-store s3://models=/mnt/models`` is read from
``/mnt/models/iris/v2/model.yaml``. A URI no store covers is recorded without a sha256.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from predictor.canary.isvc import model_uri
from predictor.spec import MANIFEST_NAME, SpecError, load_spec

Obj = dict[str, Any]


class ModelError(ValueError):
    """A --model-store flag that is malformed, or a model manifest that cannot be read through one."""


@dataclass(frozen=True)
class ModelStore:
    """A local folder that holds what a storage prefix holds."""

    prefix: str
    root: Path

    @classmethod
    def parse(cls, text: str) -> ModelStore:
        prefix, sep, folder = text.partition("=")
        if not sep or "://" not in prefix or not folder:
            raise ModelError(f"--model-store {text!r}: expected URI_PREFIX=DIR, e.g. s3://models=/mnt/models")
        root = Path(folder)
        if not root.is_dir():
            raise ModelError(f"--model-store {text!r}: {folder} is not a directory")
        return cls(prefix.rstrip("/"), root)

    def covers(self, uri: str) -> bool:
        return uri == self.prefix or uri.startswith(self.prefix + "/")

    def manifest_path(self, uri: str) -> Path:
        """Where this store keeps the manifest of the model at ``uri`` (a folder, or a file in one)."""
        root = self.root.resolve()
        path = (root / uri[len(self.prefix) :].lstrip("/")).resolve()
        if not path.is_relative_to(root):
            raise ModelError(f"model URI {uri!r} leads outside --model-store {self.prefix}={self.root}")
        folder = path.parent if path.is_file() else path
        return folder / MANIFEST_NAME


def store_for(stores: list[ModelStore], uri: str) -> ModelStore | None:
    """The store with the longest prefix covering ``uri``."""
    covering = [store for store in stores if store.covers(uri)]
    return max(covering, key=lambda store: len(store.prefix)) if covering else None


def _predictor_uri(predictor: Obj) -> str | None:
    """KServe's places for a model: ``model.storageUri``, a container's STORAGE_URI, or a
    framework section (``sklearn.storageUri``, ...)."""
    found = model_uri(predictor)
    if found:
        return found
    for value in predictor.values():
        if isinstance(value, dict) and value.get("storageUri"):
            return str(value["storageUri"])
    return None


def served_models(isvc: Obj) -> list[Obj]:
    """One entry per predictor with a model from storage: the stable one and each canary."""
    name = isvc.get("metadata", {}).get("name")
    spec = isvc.get("spec", {})
    stable = spec.get("predictor", {})
    found = []
    uri = _predictor_uri(stable)
    if uri:
        found.append({"inferenceService": name, "predictor": stable.get("name") or "", "role": "stable", "uri": uri})
    for entry in spec.get("canary") or []:
        predictor = entry.get("predictor", {})
        uri = _predictor_uri(predictor)
        if uri:
            found.append({"inferenceService": name, "predictor": predictor.get("name"), "role": "canary", "uri": uri})
    return found


def read_manifest(stores: list[ModelStore], uri: str) -> Obj:
    """What the backup records of the manifest of the model at ``uri`` ({} when no store covers it)."""
    store = store_for(stores, uri)
    if store is None:
        return {}
    path = store.manifest_path(uri)
    try:
        spec = load_spec(path.parent)
    except SpecError as exc:
        raise ModelError(f"model {uri} (through --model-store {store.prefix}={store.root}): {exc}") from None
    return {
        "sha256": spec.artifact.sha256,
        "artifact": spec.artifact.path,
        "model": spec.name,
        "version": spec.version,
        "framework": spec.framework,
        "manifest": str(path),
    }


def record_models(isvcs: list[Obj], stores: list[ModelStore]) -> list[Obj]:
    """Every model the InferenceServices serve, with its manifest's sha256 where a store covers it."""
    records = []
    for isvc in isvcs:
        for model in served_models(isvc):
            manifest = read_manifest(stores, model["uri"])
            records.append({**model, "sha256": manifest.pop("sha256", None), **manifest})
    return records


def compare(records: list[Obj], stores: list[ModelStore]) -> tuple[int, list[str]]:
    """(how many backed-up models a store covers, one line for each whose manifest now names
    another artifact)."""
    checked, problems = 0, []
    for record in records:
        if not record.get("sha256") or store_for(stores, record["uri"]) is None:
            continue
        checked += 1
        now = read_manifest(stores, record["uri"]).get("sha256")
        if now != record["sha256"]:
            problems.append(f"{record['uri']}: backed up with sha256 {record['sha256']}, the store now has {now}")
    return checked, problems
