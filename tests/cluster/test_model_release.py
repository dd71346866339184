"""hack/model-release.sh (what .github/workflows/model-release.yml runs) on the control plane and
real metrics: the script itself, with the real `servekit-canary` and `kubectl`, against KServe's
controller, and Debian's Prometheus scraping predictor processes labelled as KServe's pods.

- `--mode cli`: the script starts the canary and `servekit-canary run` promotes a healthy one (exit 0).
- `--mode controller`: the script applies a CanaryAnalysis, starts the canary and waits for the
  controller (a process with manifests/canary-controller's RBAC) to roll a failing one back (exit 1).

The script starts the canary itself, so the canary's pods are scraped as soon as KServe makes
them; the analysis looks at the first metrics one interval after the canary is ready, and a
threshold of 3 leaves room for a check that ran before the first scrape.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from predictor.canary.queries import standard_app_label
from tests.cluster.canary_checks import check_promoted, check_rolled_back, uid_of
from tests.cluster.canary_tool import (
    V2_URI,
    ControllerProcess,
    history_actions,
    manifests_rbac,
    start_stable,
    token_kubeconfig,
)
from tests.cluster.cluster import Cluster
from tests.cluster.scraped_pods import ScrapedPods

SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "model-release.sh"
ISVC = "iris"
ANALYSIS = ["--steps", "20,50", "--interval", "6s", "--threshold", "3", "--max-p99-ms", "200"]
CANARY_PODS_SECONDS = 60
VERDICT_SECONDS = 150


def start_release(cluster: Cluster, namespace: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """The script as a workflow step runs it: the cluster's kubeconfig, the tools on PATH."""
    tools = Path(sys.executable).parent  # servekit-canary, installed beside this interpreter
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    command = ["bash", str(SCRIPT), "-n", namespace, "--isvc", ISVC, "--name", "v2", "--storage-uri", V2_URI]
    with log.open("wb") as out:
        return subprocess.Popen([*command, *args, *ANALYSIS], stdout=out, stderr=subprocess.STDOUT, env=env)


def scrape_canary_once_running(cluster: Cluster, namespace: str, scraped: ScrapedPods, canary: str) -> str:
    """Wait for the pods KServe makes for the canary, scrape them as `canary`; the canary
    Deployment's uid (the promoted predictor keeps it)."""
    selector = f"app={standard_app_label(ISVC, 'v2')}"
    cluster.wait_until(lambda: cluster.list("pods", namespace, selector), CANARY_PODS_SECONDS, f"pods {selector}")
    scraped.scrape(cluster, namespace, ISVC, {"v1": "healthy", "v2": canary})
    return uid_of(cluster, "deployment", f"{ISVC}-v2-predictor", namespace)


def verdict(release: subprocess.Popen[bytes], log: Path, *extra_logs: Any) -> tuple[int, str]:
    try:
        code = release.wait(timeout=VERDICT_SECONDS)
    except subprocess.TimeoutExpired:
        release.kill()
        release.wait(timeout=10)
        tails = "\n".join(str(tail()) for tail in extra_logs)
        raise AssertionError(f"no verdict within {VERDICT_SECONDS}s:\n{log.read_text()}\n{tails}") from None
    return code, log.read_text()


def test_cli_mode_promotes_a_healthy_canary(
    cluster: Cluster, namespace: str, scraped: ScrapedPods, tmp_path: Path
) -> None:
    start_stable(cluster, namespace, ISVC)
    log = tmp_path / "model-release.log"
    release = start_release(cluster, namespace, log, "--mode", "cli", "--prometheus-url", scraped.url)
    try:
        canary_uid = scrape_canary_once_running(cluster, namespace, scraped, "healthy")
        code, output = verdict(release, log)
    finally:
        release.kill()
    assert code == 0, f"exit {code}:\n{output}"
    assert f"PROMOTED: canary 'v2' now serves all of {namespace}/{ISVC}" in output, output
    check_promoted(cluster, namespace, ISVC, "v2", canary_uid)
    assert history_actions(cluster, namespace, ISVC) == ["baseline", "start", "set-weight", "set-weight", "promote"]


def test_controller_mode_rolls_back_a_failing_canary(
    cluster: Cluster,
    canary_crd: dict[str, Any],
    namespace: str,
    scraped: ScrapedPods,
    controllers: list[ControllerProcess],
    tmp_path: Path,
) -> None:
    cluster.apply(manifests_rbac(namespace), namespace)
    start_stable(cluster, namespace, ISVC)
    kubeconfig = token_kubeconfig(cluster, namespace, "servekit-canary-controller", tmp_path / "sa.kubeconfig")
    controller = ControllerProcess(kubeconfig, namespace, tmp_path / "controller.log").start()
    controllers.append(controller)

    log = tmp_path / "model-release.log"
    release = start_release(cluster, namespace, log, "--mode", "controller", "--prometheus-url", scraped.url)
    try:
        scrape_canary_once_running(cluster, namespace, scraped, "failing")
        code, output = verdict(release, log, controller.tail)
    finally:
        release.kill()
    assert code == 1, f"exit {code}:\n{output}\ncontroller log:\n{controller.tail()}"
    assert f"ROLLED BACK: canary 'v2' of {namespace}/{ISVC} failed its analysis" in output, output
    assert "RolledBack" in output, f"the script shows the controller's Events on a rollback:\n{output}"
    analysis = cluster.get("canaryanalysis", ISVC, namespace)
    assert analysis is not None and analysis["spec"]["prometheusUrl"] == scraped.url
    assert "request-success-rate" in analysis["status"]["message"], analysis["status"]
    check_rolled_back(cluster, namespace, ISVC, "v1")
