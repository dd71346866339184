"""What the e2e tests share: where the hack/ scripts are, how to run them, what a full run prints."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HACK_DIR = REPO_ROOT / "hack"
E2E_SCRIPT = HACK_DIR / "e2e.sh"
E2E_DIR = Path(__file__).resolve().parent
VALUES_DIR = E2E_DIR / "values"
MODEL_STORE = E2E_DIR / "manifests" / "model-store.yaml"
CHART_DIR = REPO_ROOT / "helm" / "servekit"

# The lines `hack/e2e.sh` prints for its checks, in order: "RESULT <phase> <check> <seen>".
STABLE_RESULTS = [
    "RESULT stable v2-infer label=0 model_version=1",
    "RESULT stable v1-predict predictions=[0]",
    "RESULT stable helm-test passed",
]
CANARY_RESULTS = [
    "RESULT canary status v2:true:20",
    "RESULT canary/v1 v2-infer label=0 model_version=1",
    "RESULT canary/v2 v2-infer label=0 model_version=2",
    "RESULT canary helm-test passed",
    "RESULT promoted status no-canary",
    "RESULT promoted v2-infer label=0 model_version=2",
    "RESULT promoted v1-predict predictions=[0]",
    "RESULT promoted helm-test passed",
]
KUSTOMIZE_RESULTS = [
    "RESULT helm uninstall removed",
    "RESULT kustomize v2-infer label=0 model_version=1",
    "RESULT kustomize v1-predict predictions=[0]",
    "RESULT kustomize uninstall removed",
]
FULL_RUN_RESULTS = STABLE_RESULTS + CANARY_RESULTS + KUSTOMIZE_RESULTS
PASS_LINE = "e2e: PASS"

# What hack/deploy.sh sets on top of the values files, for the image hack/build-and-load.sh loads.
DEPLOY_IMAGE_VALUES = {"image": {"repository": "servekit/predictor", "tag": "dev", "digest": "", "pullPolicy": "Never"}}


def hack_scripts() -> list[Path]:
    return sorted(HACK_DIR.glob("*.sh"))


def run_script(
    script: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`bash hack/SCRIPT ARGS` from the repository root (as `make` runs them)."""
    return subprocess.run(
        ["bash", str(script.relative_to(REPO_ROOT)), *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def result_lines(output: str) -> list[str]:
    return [line.rstrip() for line in output.splitlines() if line.startswith("RESULT ")]


def script_constant(script: Path, name: str) -> str:
    """The value of `readonly NAME="VALUE"` (or `NAME=VALUE`) in a script."""
    match = re.search(rf'^(?:readonly )?{name}="?([^"\n]*)"?$', script.read_text(), re.MULTILINE)
    assert match is not None, f"{script.name} defines no {name}"
    return match.group(1)


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])
