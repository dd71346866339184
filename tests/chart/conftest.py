"""Fixtures for the chart, manifest and image tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import helm_python
import pytest

from tests.support.rendering import KubectlMissing, Rendered, ci_values, kustomize_build, render


@pytest.fixture(scope="session")
def render_ci(chart: helm_python.Chart) -> Callable[[Path], Rendered]:
    cache: dict[Path, Rendered] = {}

    def render_scenario(path: Path) -> Rendered:
        if path not in cache:
            cache[path] = render(chart, ci_values(path))
        return cache[path]

    return render_scenario


def kustomize_or_fail(directory: Path) -> list[dict]:
    try:
        return kustomize_build(directory)
    except KubectlMissing as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def build_overlay() -> Callable[[Path], list[dict]]:
    cache: dict[Path, list[dict]] = {}

    def build(directory: Path) -> list[dict]:
        if directory not in cache:
            cache[directory] = kustomize_or_fail(directory)
        return cache[directory]

    return build
