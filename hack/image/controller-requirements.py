#!/usr/bin/env python3
"""Print what the canary controller image installs besides servekit itself, one requirement a line.

Usage: hack/image/controller-requirements.py PYPROJECT

  PYPROJECT    servekit's pyproject.toml
  -h, --help   show this help

The controller image (the Dockerfile's `controller` target) installs servekit with --no-deps,
since its base dependencies bring KServe and scikit-learn, then these: every requirement of the
`canary` extra, and the base dependencies that [tool.servekit.controller-image] base-dependencies
names, with the version ranges project.dependencies gives them. tests/unit/test_import_boundaries.py
proves that servekit-canary imports nothing beyond them. Only the standard library is used: this
runs in the image's build stage before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

# A requirement's distribution name: what comes before its extras, version range or marker.
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalized(name: str) -> str:
    """PEP 503: names compare case-insensitively, with runs of -, _ and . alike."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = NAME.match(requirement)
    if match is None:
        raise ValueError(f"requirement {requirement!r} does not start with a distribution name")
    return normalized(match[1])


def controller_requirements(pyproject: dict[str, Any]) -> list[str]:
    """The canary extra plus the named base dependencies, each exactly as pyproject.toml writes it."""
    project = pyproject["project"]
    wanted = pyproject.get("tool", {}).get("servekit", {}).get("controller-image", {}).get("base-dependencies")
    if not isinstance(wanted, list) or not wanted:
        raise ValueError("[tool.servekit.controller-image] base-dependencies is missing: expected a list of names")
    base = {requirement_name(requirement): requirement for requirement in project["dependencies"]}
    unknown = sorted(name for name in wanted if normalized(name) not in base)
    if unknown:
        raise ValueError(
            f"[tool.servekit.controller-image] base-dependencies names {unknown}, "
            f"which project.dependencies lacks (it has {sorted(base)})"
        )
    canary = project.get("optional-dependencies", {}).get("canary")
    if not canary:
        raise ValueError("project.optional-dependencies has no `canary` extra: nothing for the controller to run")
    return [base[normalized(name)] for name in wanted] + list(canary)


def main(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__.strip())
        return 0
    if len(argv) != 1:
        print(f"expected one PYPROJECT, got {len(argv)} arguments: {argv}\n\n{__doc__.strip()}", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        requirements = controller_requirements(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        print(f"controller-requirements: {path}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(requirements))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
