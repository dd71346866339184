"""A directory laid out as kubelet lays out a Secret volume, and rotated the way kubelet rotates it.

kubelet's atomic writer keeps each version in a timestamped directory, points ``..data`` at the
current one, and makes every key a symlink through ``..data``:

    token -> ..data/token
    ..data -> ..2026_11_26_07_00_00.000000001
    ..2026_11_26_07_00_00.000000001/token

An update writes a new timestamped directory, points a temporary symlink at it and renames that
over ``..data`` (one atomic step), then removes the old directory. The path ``token`` is never
touched, so its own inode never changes.
"""

from __future__ import annotations

import os
import shutil
from itertools import count
from pathlib import Path

_versions = count(1)


class SecretVolume:
    def __init__(self, root: Path, key: str = "token") -> None:
        self.root = root
        self.key = key
        root.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path:
        """What the pod mounts and the predictor reads: ``<root>/<key>``."""
        return self.root / self.key

    def write(self, content: str) -> None:
        """Publish ``content`` as the new version, atomically, as kubelet does."""
        version = self.root / f"..2026_11_26_07_00_00.{next(_versions):09d}"
        version.mkdir()
        (version / self.key).write_text(content)
        data = self.root / "..data"
        old = data.resolve() if data.is_symlink() else None
        staging = self.root / "..data_tmp"
        staging.symlink_to(version.name)
        os.replace(staging, data)
        if not self.path.is_symlink():
            self.path.symlink_to(f"..data/{self.key}")
        if old is not None:
            shutil.rmtree(old)
