"""hack/backup.sh and hack/restore.sh on the control plane: a namespace with the chart (a canary
analysis, its controller, and a history written by servekit-canary) and an overlay is backed up,
deleted, and restored into a new namespace and under its own name; each InferenceService is Ready
again by KServe's conditions with the spec it had (after KServe's defaulting), the analysis and the
history are back, `servekit-canary history` reads them, and Helm sees the release."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from predictor.examples import sklearn_iris
from tests.cluster.cluster import Cluster, condition_true
from tests.cluster.serving import (
    READY_TIMEOUT,
    ROWS,
    expected_answer,
    gateway,
    infer,
    install,
    isvc_host,
    outputs,
    predictor_pods,
    put_model,
    s3_client_env,
    s3_values,
)
from tests.e2e.harness import HACK_DIR, REPO_ROOT
from tests.support.rendering import MANIFESTS_DIR

OVERLAY = MANIFESTS_DIR / "overlays" / "standard-hpa"
RELEASE = "demo"
BUCKET = "s3://servekit-models"
# The chart with its canary analysis and the controller, a stable predictor named for canaries.
VALUES: dict[str, Any] = {
    "predictor": {"name": "v1"},
    "model": {"storageUri": f"{BUCKET}/iris/v1"},
    "canaryAnalysis": {"enabled": True, "spec": {"steps": [10, 50], "interval": "30s"}},
    "canaryController": {"enabled": True},
    "metrics": {"serviceMonitor": {"enabled": True}},
}
SCRIPT_TIMEOUT = 180


def run(
    cluster: Cluster, script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`bash hack/SCRIPT ARGS` against the cluster, with this interpreter's servekit."""
    env = {**os.environ, **(env or {}), "KUBECONFIG": str(cluster.kubeconfig), "SERVEKIT_PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(HACK_DIR / script), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def canary(cluster: Cluster, namespace: str, *args: str) -> str:
    command = [sys.executable, "-m", "predictor.canary.cli", *args, "-n", namespace]
    command += ["--kubeconfig", str(cluster.kubeconfig)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"servekit-canary {args}: {result.stderr}"
    return result.stdout


@pytest.fixture
def model_store(tmp_path: Path) -> Path:
    """A local copy of the bucket: iris/v1 and iris/v2, each a real model directory with its model.yaml."""
    root = tmp_path / "store"
    sklearn_iris.build(root / "iris" / "v1")
    shutil.copytree(root / "iris" / "v1", root / "iris" / "v2")
    return root


def isvc_names(cluster: Cluster, namespace: str) -> list[str]:
    return cluster.names("inferenceservices", namespace)


def spec_of(cluster: Cluster, namespace: str, name: str) -> Any:
    isvc = cluster.get("inferenceservice", name, namespace)
    assert isvc is not None, f"no InferenceService {namespace}/{name}"
    return isvc["spec"]


def snapshot(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """What a restore must bring back: specs after KServe's defaulting, the analysis, the history."""
    history = cluster.get("configmap", f"{RELEASE}-servekit-canary-history", namespace)
    analysis = cluster.get("canaryanalysis", f"{RELEASE}-servekit", namespace)
    assert history is not None and analysis is not None
    return {
        "specs": {name: spec_of(cluster, namespace, name) for name in isvc_names(cluster, namespace)},
        "analysis": analysis["spec"],
        "history": history["data"],
    }


def check_restored(cluster: Cluster, namespace: str, before: dict[str, Any]) -> None:
    assert isvc_names(cluster, namespace) == sorted(before["specs"])
    for name, spec in before["specs"].items():
        isvc = cluster.wait_for_isvc(namespace, name)
        assert condition_true(isvc, "Ready")
        assert isvc["spec"] == spec, f"{name}: the restored spec differs"
    assert snapshot(cluster, namespace) == before
    entries = json.loads(canary(cluster, namespace, "history", f"{RELEASE}-servekit", "-o", "json"))
    assert [(e["revision"], e["action"]) for e in entries] == [(1, "baseline"), (2, "start"), (3, "promote")]
    with helm_python.Config(kubeconfig_path=cluster.kubeconfig, namespace=namespace) as helm:
        status = helm.status(RELEASE)
        assert (status["status"], status["chart_name"], status["chart_version"]) == ("deployed", "servekit", "0.1.0")
        assert helm.get_values(RELEASE) == VALUES


def check_rollback_to_the_first_model(cluster: Cluster, namespace: str) -> None:
    """The restored history takes the InferenceService back to revision 1: stable v1, model iris/v1."""
    name = f"{RELEASE}-servekit"
    canary(cluster, namespace, "restore", name, "1")
    isvc = cluster.wait_for_isvc(namespace, name, caught_up=lambda isvc, _: isvc["spec"]["predictor"]["name"] == "v1")
    env = {e["name"]: e.get("value") for e in isvc["spec"]["predictor"]["containers"][0]["env"]}
    assert env["STORAGE_URI"] == f"{BUCKET}/iris/v1"
    entries = json.loads(canary(cluster, namespace, "history", name, "-o", "json"))
    assert [e["action"] for e in entries] == ["baseline", "start", "promote", "restore"]


def set_up_source(cluster: Cluster, helm: helm_python.Config, chart: helm_python.Chart, namespace: str) -> None:
    """The chart and an overlay side by side; a canary started and promoted, so the history has entries."""
    helm.install(chart, RELEASE, VALUES)
    cluster.kubectl("apply", "-k", str(OVERLAY), "-n", namespace)
    name = f"{RELEASE}-servekit"
    cluster.wait_for_isvc(namespace, name)
    canary(cluster, namespace, "start", name, "--name", "v2", "--storage-uri", f"{BUCKET}/iris/v2", "--weight", "10")
    canary(cluster, namespace, "promote", name)
    for isvc in isvc_names(cluster, namespace):
        cluster.wait_for_isvc(namespace, isvc)


def test_backup_delete_and_restore_into_a_new_namespace_and_under_the_same_name(
    cluster: Cluster,
    helm: helm_python.Config,
    chart: helm_python.Chart,
    namespace: str,
    make_namespace: Callable[[str], str],
    model_store: Path,
    tmp_path: Path,
) -> None:
    set_up_source(cluster, helm, chart, namespace)
    before = snapshot(cluster, namespace)
    archive = tmp_path / "backup.tar.gz"
    store = f"{BUCKET}={model_store}"
    succeeded(run(cluster, "backup.sh", "-n", namespace, "-o", str(archive), "--model-store", store))

    with tarfile.open(archive) as packed:
        (models_file,) = [m for m in packed.getmembers() if m.name.endswith("/models.yaml")]
        recorded = yaml.safe_load(packed.extractfile(models_file).read())
    manifest = yaml.safe_load((model_store / "iris" / "v2" / "model.yaml").read_text())
    assert [(m["uri"], m["sha256"]) for m in recorded] == [(f"{BUCKET}/iris/v2", manifest["artifact"]["sha256"])]

    cluster.kubectl("delete", "namespace", namespace, "--wait=true", timeout=120)

    elsewhere = make_namespace("restored")
    output = succeeded(
        run(cluster, "restore.sh", str(archive), "-n", elsewhere, "--model-store", store, "--wait", "90")
    )
    assert "Helm release demo: installed servekit 0.1.0" in output
    check_restored(cluster, elsewhere, before)
    check_rollback_to_the_first_model(cluster, elsewhere)

    # Under its own name: the namespace is made again, with the source's Pod Security labels.
    succeeded(run(cluster, "restore.sh", str(archive), "--wait", "90"))
    check_restored(cluster, namespace, before)
    labels = cluster.get("namespace", namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"

    # A second run changes nothing.
    again = succeeded(run(cluster, "restore.sh", str(archive)))
    assert "holds an earlier run of this restore" in again
    assert "Helm release demo: unchanged" in again
    assert again.count(": unchanged") == 1 + len(before["specs"]) + 3  # release, services, account, history, analysis
    with helm_python.Config(kubeconfig_path=cluster.kubeconfig, namespace=namespace) as config:
        assert config.status(RELEASE)["revision"] == 1

    # A model that changed in storage since the backup stops a restore before it writes anything.
    changed = model_store / "iris" / "v2" / "model.yaml"
    changed.write_text(changed.read_text().replace(manifest["artifact"]["sha256"], "ab" * 32))
    refused = run(cluster, "restore.sh", str(archive), "-n", elsewhere, "--model-store", store)
    assert refused.returncode == 1
    assert (
        f"{BUCKET}/iris/v2: backed up with sha256 {manifest['artifact']['sha256']}, the store now has {'ab' * 32}"
        in (refused.stderr)
    )


@pytest.fixture
def overlay_backup(cluster: Cluster, namespace: str, tmp_path: Path) -> Path:
    """A backup (a folder) of a namespace holding the overlay's InferenceService."""
    cluster.kubectl("apply", "-k", str(OVERLAY), "-n", namespace)
    folder = tmp_path / "backup"
    succeeded(run(cluster, "backup.sh", "-n", namespace, "-o", str(folder)))
    return folder


def test_restore_refuses_a_namespace_that_is_not_empty_unless_forced(
    cluster: Cluster, overlay_backup: Path, make_namespace: Callable[[str], str]
) -> None:
    taken = make_namespace("taken")
    cluster.kubectl("apply", "-k", str(OVERLAY), "-n", taken)
    refused = run(cluster, "restore.sh", str(overlay_backup), "-n", taken)
    assert refused.returncode == 1
    assert f"namespace {taken} is not empty (inferenceservice.serving.kserve.io/iris)" in refused.stderr
    assert "pass --force" in refused.stderr
    assert "servekit.dev/restored-from" not in cluster.get("namespace", taken)["metadata"].get("annotations", {})

    output = succeeded(run(cluster, "restore.sh", str(overlay_backup), "-n", taken, "--force", "--wait", "90"))
    assert "serviceaccounts/iris-predictor: unchanged" in output
    cluster.wait_for_isvc(taken, "iris")


def test_a_dry_run_writes_nothing_and_missing_apis_are_named(
    cluster: Cluster, overlay_backup: Path, namespace: str, make_namespace: Callable[[str], str]
) -> None:
    unwritten = overlay_backup.parent / "unwritten.tar.gz"
    listed = succeeded(run(cluster, "backup.sh", "-n", namespace, "-o", str(unwritten), "--dry-run"))
    assert "InferenceService iris -> inferenceservices/iris.yaml" in listed
    assert "dry run: nothing written" in listed
    assert not unwritten.exists()

    target = f"never-{make_namespace('unused')}"  # a name no one uses: nothing may create it
    dry = succeeded(run(cluster, "restore.sh", str(overlay_backup), "-n", target, "--dry-run"))
    assert f"namespace {target} does not exist: it will be created" in dry
    assert "inferenceservices/iris: would be created" in dry
    assert cluster.get("namespace", target) is None

    path = overlay_backup / "inferenceservices" / "iris.yaml"
    path.write_text(path.read_text().replace("serving.kserve.io/v1beta1", "serving.kserve.io/v1beta9"))
    refused = run(cluster, "restore.sh", str(overlay_backup), "-n", target)
    assert refused.returncode == 1
    assert "the target cluster does not serve inferenceservices.serving.kserve.io/v1beta9" in refused.stderr
    assert cluster.get("namespace", target) is None


def test_a_namespace_serving_from_s3_comes_back_serving_with_its_models_checked_in_the_bucket(
    cluster: Cluster,
    helm: helm_python.Config,
    chart: helm_python.Chart,
    namespace: str,
    real_node_images: None,
    tmp_path: Path,
) -> None:
    """The whole path against a real S3 API: a model put into the harness's store and served on the
    real node; a backup that reads its manifest from the bucket; the namespace deleted; the
    storage credentials put back (a backup holds no Secrets) and the restore, which checks the
    bucket still holds the model before it writes, then waits for the predictor to download it
    and answer through the gateway; and a model changed in the bucket stopping a restore."""
    folder = tmp_path / "iris"
    sklearn_iris.build(folder)
    bucket = f"s3://backup-{namespace}"
    put_model(cluster, folder, f"{bucket}/iris/v1")
    name = install(cluster, helm, chart, namespace, s3_values(cluster, namespace, f"{bucket}/iris/v1"))
    labels, _ = expected_answer(tmp_path, ROWS)
    assert outputs(infer(gateway(cluster), isvc_host(cluster, namespace, name), ROWS))["label"]["data"] == labels

    aws = s3_client_env(cluster)
    sha = yaml.safe_load((folder / "model.yaml").read_text())["artifact"]["sha256"]
    archive = tmp_path / "backup.tar.gz"
    succeeded(run(cluster, "backup.sh", "-n", namespace, "-o", str(archive), "--model-store", bucket, env=aws))
    with tarfile.open(archive) as packed:
        (models_file,) = [m for m in packed.getmembers() if m.name.endswith("/models.yaml")]
        (recorded,) = yaml.safe_load(packed.extractfile(models_file).read())
    assert (recorded["uri"], recorded["sha256"]) == (f"{bucket}/iris/v1", sha)
    assert recorded["manifest"] == f"{bucket}/iris/v1/model.yaml"

    cluster.kubectl("delete", "namespace", namespace, "--wait=true", timeout=180)
    cluster.kubectl("create", "namespace", namespace)
    s3_values(cluster, namespace, f"{bucket}/iris/v1")  # the Secret and ServiceAccount, from the secret store
    output = succeeded(
        run(cluster, "restore.sh", str(archive), "--model-store", bucket, "--wait", str(READY_TIMEOUT), env=aws)
    )
    assert f"inferenceservice {namespace}/{name} is Ready" in output
    (pod,) = predictor_pods(cluster, namespace, name)
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert outputs(infer(gateway(cluster), isvc_host(cluster, namespace, name), ROWS))["label"]["data"] == labels

    # Another artifact behind the same URI since the backup: the restore stops before writing.
    changed = (folder / "model.yaml").read_text().replace(sha, "ab" * 32)
    (folder / "model.yaml").write_text(changed)
    put_model(cluster, folder, f"{bucket}/iris/v1")
    refused = run(cluster, "restore.sh", str(archive), "--model-store", bucket, "--dry-run", env=aws)
    assert refused.returncode == 1, refused.stderr
    assert f"{bucket}/iris/v1: backed up with sha256 {sha}, the store now has {'ab' * 32}" in refused.stderr
