"""Find a model's artifact and prove it is the one the manifest names before anything loads it.

Unpickling runs code, so a joblib/pickle file is only opened after its sha256 matches the
manifest: a swapped or corrupt artifact fails start-up instead of executing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from predictor.modeldir.spec import HashedFile

_CHUNK = 1 << 20


class ArtifactError(RuntimeError):
    """The artifact is missing, unreadable, corrupt or not the one the manifest names."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verified_artifact_path(model_dir: str | Path, artifact: HashedFile, what: str = "artifact") -> Path:
    """The file's path, after checking that it exists, stays inside model_dir and hashes right.

    ``what`` names the file in errors: the artifact, or another hashed file such as the profile.
    """
    root = Path(model_dir).resolve()
    path = (root / artifact.path).resolve()
    if not path.is_relative_to(root):
        raise ArtifactError(f"{what} {artifact.path!r} resolves outside the model directory {str(root)!r}")
    if not path.is_file():
        raise ArtifactError(f"{what} {artifact.path!r} not found in model directory {str(root)!r}")
    try:
        actual = sha256_of(path)
    except OSError as exc:
        raise ArtifactError(f"cannot read {what} {str(path)!r}: {exc.strerror}") from None
    if actual != artifact.sha256:
        raise ArtifactError(
            f"{what} {str(path)!r} has sha256 {actual}, but the manifest expects {artifact.sha256}; refusing to load it"
        )
    return path
