"""Find a model's artifact and prove it is the one the manifest names before anything loads it.

Unpickling runs code, so a joblib/pickle file is only opened after its sha256 matches the
manifest: a swapped or corrupt artifact fails start-up instead of executing. An artifact that is
a directory (a TensorFlow SavedModel) is hashed as its listing (``sha256_of``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from predictor.modeldir.spec import HashedFile

_CHUNK = 1 << 20


class ArtifactError(RuntimeError):
    """The artifact is missing, unreadable, corrupt or not the one the manifest names."""


def sha256_of(path: Path) -> str:
    """A file's sha256. For a directory, the sha256 of what ``sha256sum`` prints for its files,
    sorted by relative path (bytewise), which a shell reproduces:
    ``cd DIR && find . -type f | LC_ALL=C sort | sed 's|^\\./||' | xargs sha256sum | sha256sum``.
    Links and special files are refused: a link could lead out of the directory."""
    if path.is_dir():
        return _tree_sha256(path)
    return _file_sha256(path)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _tree_sha256(root: Path) -> str:
    lines = []
    for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix().encode()):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise ArtifactError(f"artifact directory {str(root)!r} holds {relative!r}, which is not a plain file")
        if path.is_file():
            lines.append(f"{_file_sha256(path)}  {relative}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def verified_artifact_path(model_dir: str | Path, artifact: HashedFile, what: str = "artifact") -> Path:
    """The file's (or artifact directory's) path, after checking that it exists, stays inside
    model_dir and hashes right. ``what`` names it in errors: the artifact, or another hashed file
    such as the profile."""
    root = Path(model_dir).resolve()
    path = (root / artifact.path).resolve()
    if not path.is_relative_to(root):
        raise ArtifactError(f"{what} {artifact.path!r} resolves outside the model directory {str(root)!r}")
    if not (path.is_file() or path.is_dir()):
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
