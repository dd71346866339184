"""Fixtures for the chart, manifest and image tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import helm_python
import pytest

from tests.chart.k8s_checks import ObjectValidator, ReferenceMissing
from tests.chart.rendering import CHART_DIR, KubectlMissing, Rendered, ci_values, kustomize_build, render


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def object_validator() -> ObjectValidator:
    # CI always has the KServe reference: a missing one is a broken setup, not a reason to skip.
    try:
        return ObjectValidator.from_reference()
    except ReferenceMissing as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)


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
