"""Render the Helm chart with the real Helm engine and build the kustomize overlays."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

from tests.support.k8s_checks import REPO_ROOT

CHART_DIR = REPO_ROOT / "helm" / "servekit"
CI_VALUES = sorted((CHART_DIR / "ci").glob("*-values.yaml"))
MANIFESTS_DIR = REPO_ROOT / "manifests"
KUSTOMIZATIONS = [
    MANIFESTS_DIR / "base",
    *sorted(p.parent for p in (MANIFESTS_DIR / "overlays").glob("*/kustomization.yaml")),
]
RELEASE = "ci"
NAMESPACE = "models"
LINT_KUBE_VERSION = "v1.32.0"


@dataclass
class Rendered:
    objects: list[dict[str, Any]]
    notes: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, got {len(found)}"
        return found[0]


def parse_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render(chart: helm_python.Chart, values: dict[str, Any] | None = None) -> Rendered:
    """What `helm install ci CHART -n models -f values` would send to the API server."""
    manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects: list[dict[str, Any]] = []
    notes = ""
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            notes = text
        else:
            objects.extend(parse_documents(text))
    return Rendered(objects, notes)


def ci_values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


class KubectlMissing(Exception):
    pass


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIR`: kubectl's built-in kustomize, as `kubectl apply -k` uses it."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise KubectlMissing(
            "kubectl is not on PATH: the manifest tests build every overlay with `kubectl kustomize` "
            "(kubectl >= 1.27 ships kustomize v5); install kubectl"
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return parse_documents(result.stdout)
