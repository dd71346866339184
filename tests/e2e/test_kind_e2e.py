"""The real thing: `hack/e2e.sh` on a kind cluster (KServe, the image, Helm, calls, canary, teardown).

Runs wherever a Docker engine, kind, kubectl and helm are there (10-20 minutes; it downloads KServe's
and cert-manager's release manifests and builds the image); skipped with the reason otherwise, or
when SERVEKIT_SKIP_E2E is set. test_e2e_flow.py runs the same script against stand-in tools.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.e2e.harness import E2E_SCRIPT, FULL_RUN_RESULTS, PASS_LINE, result_lines, run_script, tail

E2E_TIMEOUT_SECONDS = 45 * 60


def missing_requirements() -> list[str]:
    """What this machine lacks for the kind e2e run, one short phrase each."""
    if os.environ.get("SERVEKIT_SKIP_E2E"):
        return ["SERVEKIT_SKIP_E2E is set"]
    missing = []
    docker = shutil.which("docker")
    if docker is None:
        missing.append("docker is not installed")
    else:
        try:
            info = subprocess.run(
                [docker, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            problem = (info.stderr.strip().splitlines() or ["no output"])[-1] if info.returncode else ""
        except subprocess.TimeoutExpired:
            problem = "no answer in 30s"
        if problem:
            missing.append(f"no Docker engine answers (`docker info`: {problem})")
    missing += [f"{tool} is not installed" for tool in ("kind", "kubectl", "helm") if shutil.which(tool) is None]
    return missing


@pytest.mark.e2e
@pytest.mark.timeout(E2E_TIMEOUT_SECONDS)
def test_hack_e2e_on_kind() -> None:
    missing = missing_requirements()
    if missing:
        pytest.skip("kind e2e needs a Docker engine, kind, kubectl and helm: " + "; ".join(missing))
    result = run_script(E2E_SCRIPT, timeout=E2E_TIMEOUT_SECONDS - 60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"hack/e2e.sh exited {result.returncode}:\n{tail(output, 120)}"
    assert result_lines(result.stdout) == FULL_RUN_RESULTS, tail(output, 120)
    assert PASS_LINE in result.stdout.splitlines()
