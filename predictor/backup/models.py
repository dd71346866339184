"""The models an InferenceService serves: their storage URIs, and the sha256 their manifests name.

A servekit model directory holds ``model.yaml`` beside the artifact, and the manifest names the
artifact's sha256 (``predictor.modeldir.spec``). The backup reads the manifest of each model through
a model store, given as ``--model-store``:

- ``URI_PREFIX=DIR``: a local folder that holds what a storage prefix holds (a mounted bucket, a
  PVC's contents, or a copy of the ``model.yaml`` files), so ``s3://models/iris/v2`` with
  ``--model-store s3://models=/mnt/models`` is read from ``/mnt/models/iris/v2/model.yaml``;
- ``s3://BUCKET[/PREFIX]``: the bucket itself, over the S3 API (boto3), with the endpoint,
  region and credentials the AWS tools read (``AWS_ENDPOINT_URL``, ``AWS_REGION``,
  ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile, ...).

A URI no store covers is recorded without a sha256.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from predictor.canary.isvc import model_uri
from predictor.kube_object import Obj
from predictor.modeldir.spec import MANIFEST_NAME, ModelSpec, SpecError, load_spec, spec_from_text

FOLDER_EXAMPLE = "s3://models=/mnt/models"
S3_EXAMPLE = "s3://models"


class ModelError(ValueError):
    """A --model-store flag that is malformed, or a model manifest that cannot be read through one."""


class ModelStore(ABC):
    """Where the manifests of the models under one storage prefix are read from."""

    prefix: str

    @staticmethod
    def parse(text: str) -> ModelStore:
        """A ``--model-store`` value: ``URI_PREFIX=DIR`` (a folder) or ``s3://BUCKET[/PREFIX]`` (S3)."""
        if "=" in text:
            return FolderStore.parse(text)
        if text.startswith("s3://"):
            return S3Store.parse(text)
        raise ModelError(
            f"--model-store {text!r}: expected URI_PREFIX=DIR (e.g. {FOLDER_EXAMPLE}) or s3://BUCKET[/PREFIX]"
            f" (e.g. {S3_EXAMPLE})"
        )

    def covers(self, uri: str) -> bool:
        return uri == self.prefix or uri.startswith(self.prefix + "/")

    @abstractmethod
    def describe(self) -> str:
        """The flag as the user gave it, for messages."""

    @abstractmethod
    def load(self, uri: str) -> tuple[ModelSpec, str]:
        """The manifest of the model at ``uri`` (a folder, or a file in one) and where it was read."""


@dataclass(frozen=True)
class FolderStore(ModelStore):
    """A local folder that holds what a storage prefix holds."""

    prefix: str
    root: Path

    @classmethod
    def parse(cls, text: str) -> FolderStore:
        prefix, sep, folder = text.partition("=")
        if not sep or "://" not in prefix or not folder:
            raise ModelError(f"--model-store {text!r}: expected URI_PREFIX=DIR, e.g. {FOLDER_EXAMPLE}")
        root = Path(folder)
        if not root.is_dir():
            raise ModelError(f"--model-store {text!r}: {folder} is not a directory")
        return cls(prefix.rstrip("/"), root)

    def describe(self) -> str:
        return f"{self.prefix}={self.root}"

    def manifest_path(self, uri: str) -> Path:
        """Where this store keeps the manifest of the model at ``uri``."""
        root = self.root.resolve()
        path = (root / uri[len(self.prefix) :].lstrip("/")).resolve()
        if not path.is_relative_to(root):
            raise ModelError(f"model URI {uri!r} leads outside --model-store {self.describe()}")
        folder = path.parent if path.is_file() else path
        return folder / MANIFEST_NAME

    def load(self, uri: str) -> tuple[ModelSpec, str]:
        path = self.manifest_path(uri)
        return load_spec(path.parent), str(path)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://BUCKET[/KEY]``; the key without its slashes at either end."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key.strip("/")


@dataclass(frozen=True)
class S3Store(ModelStore):
    """A bucket (or a prefix in one) read over the S3 API."""

    prefix: str
    client: Any = field(compare=False, repr=False)

    @classmethod
    def parse(cls, text: str, client: Any = None) -> S3Store:
        bucket, key = split_s3_uri(text)
        if not text.startswith("s3://") or not bucket or ".." in PurePosixPath(key).parts:
            raise ModelError(f"--model-store {text!r}: expected s3://BUCKET[/PREFIX], e.g. {S3_EXAMPLE}")
        return cls("/".join(part for part in ("s3://" + bucket, key) if part), client or _s3_client(text))

    def describe(self) -> str:
        return f"{self.prefix} (S3 API)"

    def load(self, uri: str) -> tuple[ModelSpec, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split_s3_uri(uri)
        if ".." in PurePosixPath(key).parts:
            raise ModelError(f"model URI {uri!r} leads outside --model-store {self.describe()}")
        try:
            # A URI that names the artifact file reads the manifest beside it, as in a folder.
            folder = PurePosixPath(key).parent.as_posix() if key and self._is_object(bucket, key) else key
            manifest_key = "/".join(part for part in (folder, MANIFEST_NAME) if part not in {"", "."})
            where = f"s3://{bucket}/{manifest_key}"
            answer = self.client.get_object(Bucket=bucket, Key=manifest_key)
            text = answer["Body"].read().decode("utf-8")
        except ClientError as exc:
            if _error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                raise SpecError(f"no {MANIFEST_NAME} at {where}") from None
            raise ModelError(f"reading {uri} from the S3 API failed: {exc}") from None
        except BotoCoreError as exc:
            raise ModelError(f"reading {uri} from the S3 API failed: {exc}") from None
        except UnicodeDecodeError as exc:
            raise SpecError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        return spec_from_text(text, where), where

    def _is_object(self, bucket: str, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                return False
            raise
        return True


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _s3_client(text: str) -> Any:
    """boto3's S3 client, configured as the AWS tools are (environment, profile, instance role)."""
    try:
        import boto3
    except ImportError:
        raise ModelError(
            f"--model-store {text!r}: reading a store over S3 needs boto3 (pip install 'servekit[backup]'),"
            f" or give a local copy as {FOLDER_EXAMPLE}"
        ) from None
    return boto3.client("s3")


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
    try:
        spec, where = store.load(uri)
    except SpecError as exc:
        raise ModelError(f"model {uri} (through --model-store {store.describe()}): {exc}") from None
    return {
        "sha256": spec.artifact.sha256,
        "artifact": spec.artifact.path,
        "model": spec.name,
        "version": spec.version,
        "framework": spec.framework,
        "manifest": where,
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
