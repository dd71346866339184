"""Root test configuration, and the fixtures the chart and e2e tests share."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import helm_python

    from tests.support.k8s_checks import ObjectValidator

# kserve.model_server parses sys.argv when it is imported; pytest's own flags (`--co` abbreviates
# kserve's `--configure_logging`) must not reach it.
_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import kserve.model_server  # noqa: F401
finally:
    sys.argv = _argv


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    """The chart under helm/servekit, loaded once by Helm's own engine."""
    import helm_python

    from tests.support.rendering import CHART_DIR

    with helm_python.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def object_validator() -> ObjectValidator:
    """Strict schemas: built-in kinds and the KServe CRD (from $KSERVE_CRD_DIR)."""
    from tests.support.k8s_checks import ObjectValidator, ReferenceMissing

    # CI always has the KServe reference: a missing one is a broken setup, not a reason to skip.
    try:
        return ObjectValidator.from_reference()
    except ReferenceMissing as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)
