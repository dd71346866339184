"""`servekit-canary run` to the end on the control plane AND real metrics: KServe runs the stable
and canary predictors of an InferenceService on kwok's nodes, Debian's Prometheus scrapes real
predictor processes labelled as those pods (tests/cluster/scraped_pods.py), and the analysis
promotes a healthy canary and rolls back a failing, a slow and a silent one, on the cluster."""

from __future__ import annotations

import json

import pytest

from tests.cluster.canary_checks import check_promoted, check_rolled_back, uid_of
from tests.cluster.canary_tool import (
    V2_URI,
    canary_cli,
    history_actions,
    history_config_map,
    ok,
    start_stable,
    wait_canary_ready,
)
from tests.cluster.cluster import Cluster
from tests.cluster.scraped_pods import ScrapedPods

ISVC = "iris"
# Short and bounded: an analysis every 3 s over 10 s of series; two failures roll back.
ANALYSIS = [
    "--steps", "20,50", "--interval", "3s", "--window", "10s", "--threshold", "2", "--min-requests", "10",
    "--max-p99-ms", "200", "--progress-deadline", "60s", "--poll", "1",
]  # fmt: skip
RUN_TIMEOUT = 120

OUTCOMES = {
    "healthy": (0, "Succeeded", "promoted"),
    "failing": (1, "Failed", "request-success-rate: 0.00% (min 99%)"),
    "slow": (1, "Failed", "request-duration-p99"),
    "silent": (1, "Failed", "no data"),
}


@pytest.mark.parametrize(("canary", "outcome"), OUTCOMES.items(), ids=OUTCOMES.keys())
def test_run_promotes_or_rolls_back_on_the_cluster(
    cluster: Cluster, namespace: str, scraped: ScrapedPods, canary: str, outcome: tuple[int, str, str]
) -> None:
    code, phase, reason = outcome
    start_stable(cluster, namespace, ISVC)
    ok(canary_cli(cluster, namespace, "start", ISVC, "--name", "v2", "--storage-uri", V2_URI))
    wait_canary_ready(cluster, namespace, ISVC, "v2", 0)
    scraped.scrape(cluster, namespace, ISVC, {"v1": "healthy", "v2": None if canary == "silent" else canary})
    stable_generation = deployment_generation(cluster, namespace, f"{ISVC}-v1-predictor")
    canary_uid = uid_of(cluster, "deployment", f"{ISVC}-v2-predictor", namespace)

    run = canary_cli(cluster, namespace, "run", ISVC, "--prometheus-url", scraped.url, *ANALYSIS, timeout=RUN_TIMEOUT)
    assert run.returncode == code, f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    assert run.stdout.splitlines()[-1].startswith(f"{namespace}/{ISVC} {phase} canary=v2"), run.stdout
    if code != 0:
        # The run's saved states never touched what KServe runs (KServe copies an
        # InferenceService's annotations into the pod template).
        assert deployment_generation(cluster, namespace, f"{ISVC}-v1-predictor") == stable_generation
    state = json.loads(history_config_map(cluster, namespace, ISVC)["data"]["rollout.json"])
    assert state["phase"] == phase and reason in state["message"], state["message"]

    if code == 0:
        check_promoted(cluster, namespace, ISVC, "v2", canary_uid)
        assert history_actions(cluster, namespace, ISVC) == ["baseline", "start", "set-weight", "set-weight", "promote"]
    else:
        check_rolled_back(cluster, namespace, ISVC, "v1")
        assert "promote" not in history_actions(cluster, namespace, ISVC)


def deployment_generation(cluster: Cluster, namespace: str, name: str) -> int:
    found = cluster.get("deployment", name, namespace)
    assert found is not None, f"no Deployment {name}"
    return int(found["metadata"]["generation"])
