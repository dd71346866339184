"""The pinned versions of the cluster components, from hack/versions.env (one place for kind, the
control plane and the tests)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

VERSIONS_FILE = Path(__file__).resolve().parents[1] / "hack" / "versions.env"
_ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(\S+)$")


@functools.cache
def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """NAME -> version for every `NAME=value` line; comments and blank lines are skipped."""
    versions = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ASSIGNMENT.match(line)
        if match is None:
            raise ValueError(f"{path}:{number}: expected NAME=value, got {line!r}")
        versions[match[1]] = match[2]
    return versions
