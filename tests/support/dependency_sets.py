"""Which distributions each of servekit's images carries, read from the installed metadata, and a
fresh interpreter that cannot import the modules of the others.

The predictor image installs servekit's base dependencies (`pip install servekit`, plus the torch
extra for CUDA); the canary controller image installs the canary extra and the base dependencies
pyproject.toml names under [tool.servekit.controller-image] (hack/image/controller-requirements.py).
A module is "missing" from an image when every distribution that provides it is outside that
image's dependency closure: that is what an import there would meet.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def normalized(name: str) -> str:
    """PEP 503: distribution names compare case-insensitively, with runs of -, _ and . alike."""
    return re.sub(r"[-_.]+", "-", name).lower()


def servekit_requirements(*extras: str) -> list[Requirement]:
    """servekit's base requirements (no extras named) or those the named extras add."""
    if not extras:
        return [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
    optional = PYPROJECT["project"]["optional-dependencies"]
    return [Requirement(text) for extra in extras for text in optional[extra]]


def controller_image_requirements() -> list[Requirement]:
    """What the controller image installs besides servekit (the same rule as its build script)."""
    wanted = {normalized(name) for name in PYPROJECT["tool"]["servekit"]["controller-image"]["base-dependencies"]}
    base = [req for req in servekit_requirements() if normalized(req.name) in wanted]
    assert len(base) == len(wanted), f"base-dependencies {sorted(wanted)} not all in project.dependencies"
    return base + servekit_requirements("canary")


def closure(roots: Iterable[Requirement]) -> set[str]:
    """The installed distributions these requirements pull in, themselves included (normalized names)."""
    seen: set[str] = set()
    visited: set[tuple[str, frozenset[str]]] = set()  # a distribution with these extras, expanded
    pending = [(req, frozenset(req.extras)) for req in roots]
    while pending:
        req, extras = pending.pop()
        name = normalized(req.name)
        if (name, extras) in visited:
            continue
        visited.add((name, extras))
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here (another platform's marker, an optional extra)
        seen.add(name)
        for text in requires:
            child = Requirement(text)
            environments = [{"extra": extra} for extra in ("", *extras)]
            if child.marker is None or any(child.marker.evaluate(env) for env in environments):
                pending.append((child, frozenset(child.extras)))
    return seen


# Python 3.11's `python -m venv` puts these in every virtualenv, so in both images.
IN_EVERY_VENV = {"pip", "setuptools"}


def modules_only_in(distributions: set[str]) -> set[str]:
    """Top-level modules that only these distributions provide (a shared namespace stays importable)."""
    absent = distributions - IN_EVERY_VENV
    return {
        module
        for module, providers in metadata.packages_distributions().items()
        if providers and all(normalized(provider) in absent for provider in providers)
    }


def missing_from_predictor_image() -> set[str]:
    """Modules of the canary and backup extras that servekit's base dependencies do not bring."""
    tools = closure(servekit_requirements("canary", "backup"))
    return modules_only_in(tools - closure(servekit_requirements()))


def missing_from_controller_image() -> set[str]:
    """Modules of servekit's base dependencies and the torch extra that the controller image lacks."""
    serving = closure(servekit_requirements()) | closure(servekit_requirements("torch"))
    return modules_only_in(serving - closure(controller_image_requirements()))


# Runs first in the child: every finder on sys.meta_path is wrapped so that it finds nothing for the
# listed top-level modules (argv[1], comma-separated) and their submodules. An import of one then
# fails with Python's own ModuleNotFoundError, and importlib.util.find_spec answers None, exactly
# as in an interpreter without their distributions (libraries probe for optional modules so);
# imports made later inside functions meet the same.
_HIDE_MODULES = """
import importlib.abc, sys
class HideModules(importlib.abc.MetaPathFinder):
    def __init__(self, finder, names):
        self.finder, self.names = finder, names
    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in self.names:
            return None
        find_spec = getattr(self.finder, "find_spec", None)
        return find_spec(fullname, path, target) if find_spec else None
    def invalidate_caches(self):
        getattr(self.finder, "invalidate_caches", lambda: None)()
    def find_distributions(self, *args, **kwargs):  # importlib.metadata asks the finders too
        return getattr(self.finder, "find_distributions", lambda *a, **k: ())(*args, **kwargs)
hidden = frozenset(filter(None, sys.argv[1].split(",")))
already = sorted(name for name in sys.modules if name.partition(".")[0] in hidden)
assert not already, f"imported before the finders were wrapped: {already}"
sys.meta_path[:] = [HideModules(finder, hidden) for finder in sys.meta_path]
del sys.argv[1]
"""


def command_without(modules: set[str], code: str, *args: str) -> list[str]:
    """A command line: ``code`` in a fresh interpreter (this one's environment) that cannot find
    ``modules``; ``args`` reach it as sys.argv[1:]."""
    return [sys.executable, "-c", _HIDE_MODULES + code, ",".join(sorted(modules)), *args]


def run_without(modules: set[str], code: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that cannot find ``modules``."""
    return subprocess.run(
        command_without(modules, code),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
