"""hack/e2e.sh and the scripts it calls, run for real against stand-in tools (tests/e2e/fake_cluster.py).

No Docker engine here, so docker, kind, kubectl, helm and curl are replaced by fakes that keep a
cluster's state in a file; the chart is rendered by the real Helm engine and the kustomize base built
by the real kubectl. This checks the scripts' flow, idempotency, failure handling and the lines they
print; tests/e2e/test_kind_e2e.py runs the same script against a real kind cluster.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import fake_cluster
from tests.e2e.harness import (
    E2E_SCRIPT,
    FULL_RUN_RESULTS,
    HACK_DIR,
    KUSTOMIZE_RESULTS,
    PASS_LINE,
    STABLE_RESULTS,
    result_lines,
    run_script,
    script_constant,
    tail,
)

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def fake_state(tmp_path: Path) -> Path:
    return tmp_path / "cluster.json"


@pytest.fixture
def run(tmp_path: Path, fake_state: Path) -> Run:
    """Run a hack/ script with the fake tools first on PATH."""
    real_kubectl = shutil.which("kubectl")
    if real_kubectl is None:
        pytest.fail("kubectl is not on PATH: the fake cluster builds kustomizations with `kubectl kustomize`")
    env = fake_cluster.install(tmp_path / "bin", fake_state)
    env["FAKE_REAL_KUBECTL"] = real_kubectl

    def run_with_fakes(script: str, *args: str, fail: str = "") -> subprocess.CompletedProcess[str]:
        return run_script(HACK_DIR / script, *args, env={**env, "FAKE_CLUSTER_FAIL": fail}, timeout=100)

    return run_with_fakes


def state(path: Path) -> dict[str, Any]:
    return fake_cluster.load_state(path)


def calls(path: Path, tool: str, *prefix: str) -> list[list[str]]:
    """The recorded calls of TOOL whose arguments (global flags dropped) start with PREFIX."""
    found = []
    for call in state(path)["calls"]:
        if call[0] != tool:
            continue
        args = list(call[1:])
        fake_cluster.take(args, "--context")
        fake_cluster.take(args, "--kube-context")
        fake_cluster.take(args, "-n", "--namespace")
        if args[: len(prefix)] == list(prefix):
            found.append(args)
    return found


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One whole `hack/e2e.sh` run, shared by the tests that read its output and its calls."""
    tmp_path = tmp_path_factory.mktemp("full-run")
    real_kubectl = shutil.which("kubectl")
    if real_kubectl is None:
        pytest.fail("kubectl is not on PATH: the fake cluster builds kustomizations with `kubectl kustomize`")
    state_file = tmp_path / "cluster.json"
    env = {**fake_cluster.install(tmp_path / "bin", state_file), "FAKE_REAL_KUBECTL": real_kubectl}
    return run_script(E2E_SCRIPT, env=env, timeout=100), state_file


def test_full_run_passes_every_check_and_deletes_the_cluster(
    full_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, state_file = full_run
    assert result.returncode == 0, tail(result.stdout + result.stderr)
    assert result_lines(result.stdout) == FULL_RUN_RESULTS
    assert PASS_LINE in result.stdout.splitlines()
    assert state(state_file)["clusters"] == {}, "the cluster was not deleted"


def test_full_run_uses_the_pinned_releases_and_the_local_image(
    full_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, state_file = full_run
    assert result.returncode == 0, tail(result.stdout + result.stderr)
    node_image = script_constant(HACK_DIR / "kind-up.sh", "KIND_NODE_IMAGE")
    (create,) = calls(state_file, "kind", "create", "cluster")
    assert create[create.index("--image") + 1] == node_image
    applied = [args[args.index("-f") + 1] for args in calls(state_file, "kubectl", "apply") if "-f" in args]
    assert applied[:4] == [
        "https://github.com/cert-manager/cert-manager/releases/download/v1.17.0/cert-manager.yaml",
        "https://github.com/kserve/kserve/releases/download/v0.20.0/kserve-crds.yaml",
        "https://github.com/kserve/kserve/releases/download/v0.20.0/kserve.yaml",
        "https://github.com/kserve/kserve/releases/download/v0.20.0/kserve-cluster-resources.yaml",
    ]
    image = script_constant(E2E_SCRIPT, "IMAGE")
    assert calls(state_file, "docker", "build")[0][-1] == str(HACK_DIR.parent)
    assert [args[2] for args in calls(state_file, "kind", "load", "docker-image")] == [image]
    upgrades = calls(state_file, "helm", "upgrade", "--install")
    assert len(upgrades) == 3, "install, canary, promotion"
    for args in upgrades:
        assert "image.pullPolicy=Never" in args
        assert f"image.tag={image.split(':')[1]}" in args
    port_forwards = [args[1] for args in calls(state_file, "kubectl", "port-forward")]
    assert port_forwards == [
        "service/iris-servekit-predictor",
        "service/iris-servekit-v1-predictor",
        "service/iris-servekit-v2-predictor",
        "service/iris-servekit-v2-predictor",
        "service/iris-predictor",
    ]


def test_no_canary_stops_after_the_first_release(run: Run) -> None:
    result = run("e2e.sh", "--no-canary")
    assert result.returncode == 0, tail(result.stdout + result.stderr)
    assert result_lines(result.stdout) == STABLE_RESULTS + KUSTOMIZE_RESULTS


def test_keep_leaves_the_cluster_running(run: Run, fake_state: Path) -> None:
    result = run("e2e.sh", "--keep", "--no-canary", "--name", "kept")
    assert result.returncode == 0, tail(result.stdout + result.stderr)
    assert list(state(fake_state)["clusters"]) == ["kept"]
    assert "hack/kind-up.sh --uninstall --name kept" in result.stdout


@pytest.mark.parametrize(
    ("fail", "message"),
    [
        ("wrong-label", "stable: label [2], expected [0] (setosa)"),
        ("helm-test", "stable: helm test iris failed"),
    ],
)
def test_a_failed_check_fails_the_run_and_still_deletes_the_cluster(
    run: Run, fake_state: Path, fail: str, message: str
) -> None:
    result = run("e2e.sh", fail=fail)
    assert result.returncode == 1
    assert message in result.stderr
    assert "FAILED (exit status 1)" in result.stdout
    assert "----- inferenceservice models/iris-servekit" in result.stderr, "no diagnostics"
    assert PASS_LINE not in result.stdout
    assert state(fake_state)["clusters"] == {}


def test_cluster_and_kserve_set_up_are_idempotent(run: Run, fake_state: Path) -> None:
    for _ in range(2):
        assert run("kind-up.sh", "--name", "dev").returncode == 0
    for _ in range(2):
        result = run("install-kserve.sh", "--context", "kind-dev")
        assert result.returncode == 0, result.stderr
    assert "KServe v0.20.0 is installed" in result.stdout
    assert "cert-manager v1.17.0 is installed" in result.stdout
    assert len(calls(fake_state, "kind", "create", "cluster")) == 1
    kserve_applies = [a for a in calls(fake_state, "kubectl", "apply") if a[-1].endswith("/kserve.yaml")]
    assert len(kserve_applies) == 1

    assert run("install-kserve.sh", "--context", "kind-dev", "--uninstall").returncode == 0
    again = run("install-kserve.sh", "--context", "kind-dev", "--uninstall")
    assert again.returncode == 0
    assert "KServe is not installed" in again.stdout
    assert "cert-manager is not installed" in again.stdout
    assert run("kind-up.sh", "--name", "dev", "--uninstall").returncode == 0
    gone = run("kind-up.sh", "--name", "dev", "--uninstall")
    assert gone.returncode == 0
    assert "does not exist; nothing to delete" in gone.stdout


def test_deploy_says_when_kserve_is_missing(run: Run) -> None:
    assert run("kind-up.sh", "--name", "bare").returncode == 0
    result = run("deploy.sh", "--context", "kind-bare")
    assert result.returncode == 1
    assert "KServe is not installed on this cluster: run hack/install-kserve.sh first" in result.stderr


def test_deploy_fails_with_diagnostics_when_the_image_was_never_loaded(run: Run) -> None:
    assert run("kind-up.sh", "--name", "noimage").returncode == 0
    assert run("install-kserve.sh", "--context", "kind-noimage").returncode == 0
    result = run("deploy.sh", "--context", "kind-noimage", "--timeout", "5")
    assert result.returncode == 1
    assert "ErrImageNeverPull" in result.stderr
    assert "did not become ready" in result.stderr


def cluster_with_images(run: Run, name: str, *images: str) -> None:
    assert run("kind-up.sh", "--name", name).returncode == 0
    assert run("install-kserve.sh", "--context", f"kind-{name}").returncode == 0
    for image in images:
        loaded = run("build-and-load.sh", "--name", name, "--image", image)
        assert loaded.returncode == 0, loaded.stderr


def test_deploy_passes_an_all_digit_tag_to_helm_as_a_string(run: Run, fake_state: Path) -> None:
    # `--set image.tag=20240601` makes the tag a number, which the chart's values.schema.json refuses.
    cluster_with_images(run, "digits", "servekit/predictor:20240601")
    result = run("deploy.sh", "--context", "kind-digits", "--image", "servekit/predictor:20240601")
    assert result.returncode == 0, result.stderr
    cluster = state(fake_state)["clusters"]["digits"]
    assert cluster["releases"]["models/iris"]["values"]["image"]["tag"] == "20240601"
    container = cluster["objects"]["InferenceService/models"]["iris-servekit"]["spec"]["predictor"]["containers"][0]
    assert container["image"] == "servekit/predictor:20240601"


def test_deploy_sets_the_pull_policy_of_a_kustomize_canary_too(run: Run, fake_state: Path) -> None:
    # The standard-canary overlay's v2 spells out its own container, with imagePullPolicy IfNotPresent.
    cluster_with_images(run, "canary", "servekit/predictor:dev")
    result = run("deploy.sh", "--context", "kind-canary", "--kustomize", "--overlay", "overlays/standard-canary")
    assert result.returncode == 0, result.stderr
    isvc = state(fake_state)["clusters"]["canary"]["objects"]["InferenceService/models"]["iris"]
    assert isvc["spec"]["predictor"]["containers"][0]["imagePullPolicy"] == "Never"
    assert [c["predictor"]["containers"][0]["imagePullPolicy"] for c in isvc["spec"]["canary"]] == ["Never"]


def test_build_and_load_needs_an_existing_cluster(run: Run) -> None:
    result = run("build-and-load.sh", "--name", "nowhere")
    assert result.returncode == 1
    assert "kind cluster 'nowhere' does not exist: create it with hack/kind-up.sh --name nowhere" in result.stderr


def test_scripts_stop_at_a_cluster_that_does_not_answer(run: Run) -> None:
    for script in ("install-kserve.sh", "deploy.sh"):
        result = run(script, "--context", "kind-missing")
        assert result.returncode == 1
        assert "the cluster of kubectl context 'kind-missing' does not answer" in result.stderr
