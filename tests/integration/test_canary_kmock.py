"""``servekit-canary`` as a process, speaking HTTP to kmock (a Kubernetes API mock, in the dev extras).

These check what a real API server is not needed for: the requests the Kubernetes edge sends (merge
patches carrying resourceVersion, the history ConfigMap with its labels, Events on the
InferenceService), its retry on a 409, exit codes and output. kmock stores objects as plain JSON and
does not enforce resourceVersion, admission or RBAC: every command here gets its real-cluster test
once the control plane (hack/controlplane.sh, tests/cluster) lands.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import kmock as kmock_lib
import pytest
import yaml

from tests.support.canary_edges import standard_isvc, standard_status
from tests.support.server import free_port

pytestmark = pytest.mark.asyncio

ISVCS = kmock_lib.resource("serving.kserve.io", "v1beta1", "inferenceservices")
CONFIGMAPS = kmock_lib.resource("", "v1", "configmaps")
EVENTS = kmock_lib.resource("", "v1", "events")
CONFLICT = {"kind": "Status", "apiVersion": "v1", "code": 409, "reason": "Conflict", "message": "modified"}
CLI = str(Path(sys.executable).parent / "servekit-canary")


def kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "mock", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "not-checked"}}],
        "contexts": [{"name": "mock", "context": {"cluster": "mock", "user": "tester", "namespace": "models"}}],
        "current-context": "mock",
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def cli(config: Path, *argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        CLI, *argv, "--kubeconfig", str(config), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def stored(kmock: Any, resource: Any, name: str) -> dict[str, Any]:
    return json.loads(json.dumps(kmock.objects[resource, "models", name].raw))


@pytest.fixture
def iris(kmock: Any, tmp_path: Path) -> Path:
    obj = standard_isvc("iris")
    obj["metadata"].update({"resourceVersion": "41", "uid": "1234-abcd"})
    kmock.objects[ISVCS, "models", "iris"] = obj
    return kubeconfig(tmp_path, str(kmock.url))


async def test_a_manual_rollout_over_http(kmock: Any, iris: Path) -> None:
    code, out, _ = await cli(iris, "status", "iris", "-o", "json")
    assert code == 0 and json.loads(out)["canary"] is None and json.loads(out)["namespace"] == "models"

    code, diff, _ = await cli(iris, "start", "iris", "--name", "v2", "--storage-uri", "s3://m/v2", "--dry-run")
    assert code == 0 and "+      name: v2" in diff
    assert not list(kmock["patch"]), "a dry run sends no write"

    code, out, _ = await cli(iris, "start", "iris", "--name", "v2", "--storage-uri", "s3://m/v2", "--weight", "10")
    assert code == 0, out
    (patch,) = [request for request in kmock["patch"] if "/inferenceservices/" in str(request.url)]
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert patch.data["metadata"] == {"resourceVersion": "41"}, "conflict-safe: the version it read"
    assert patch.data["spec"]["canary"][0]["predictor"]["name"] == "v2"

    assert (await cli(iris, "set-weight", "iris", "40"))[0] == 0
    assert stored(kmock, ISVCS, "iris")["spec"]["canary"][0]["trafficPercent"] == 40
    assert (await cli(iris, "promote", "iris"))[0] == 0
    spec = stored(kmock, ISVCS, "iris")["spec"]
    assert spec["predictor"]["name"] == "v2" and "canary" not in spec

    history = stored(kmock, CONFIGMAPS, "iris-canary-history")
    assert history["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "servekit-canary",
        "servekit.dev/inferenceservice": "iris",
    }
    entries = json.loads(history["data"]["history.json"])
    assert [(e["revision"], e["action"]) for e in entries] == [
        (1, "baseline"),
        (2, "start"),
        (3, "set-weight"),
        (4, "promote"),
    ]
    code, out, _ = await cli(iris, "history", "iris", "-o", "json")
    assert code == 0 and json.loads(out) == entries


async def test_restore_and_rollback_over_http(kmock: Any, iris: Path) -> None:
    await cli(iris, "start", "iris", "--name", "v2", "--image", "servekit/predictor:0.2.0", "--weight", "10")
    code, out, _ = await cli(iris, "abort", "iris", "-o", "json")
    assert code == 0 and json.loads(out)["canary"] is None
    assert "canary" not in stored(kmock, ISVCS, "iris")["spec"]
    assert (await cli(iris, "restore", "iris", "2"))[0] == 0, "revision 2 is the start"
    assert stored(kmock, ISVCS, "iris")["spec"]["canary"][0]["predictor"]["name"] == "v2"


def isvc_requests(kmock: Any, method: str) -> list[Any]:
    return [request for request in kmock[method] if "/inferenceservices/iris" in str(request.url)]


async def test_a_conflict_is_retried_on_a_fresh_read(kmock: Any, iris: Path) -> None:
    await cli(iris, "start", "iris", "--name", "v2", "--image", "servekit/predictor:0.2.0")
    conflicts: list[Any] = []

    def conflict_once(request: Any) -> kmock_lib.Response:
        """409 for the first write of weight 30; any other request falls through to the emulator."""
        canary = (request.data or {}).get("spec", {}).get("canary") or [{}]
        if conflicts or canary[0].get("trafficPercent") != 30:
            raise kmock_lib.ReactionMismatchError
        conflicts.append(request)
        return kmock_lib.Response(status=409, payload=CONFLICT)

    kmock["patch"] << conflict_once
    reads, writes = len(isvc_requests(kmock, "get")), len(isvc_requests(kmock, "patch"))
    code, out, err = await cli(iris, "set-weight", "iris", "30", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["weight"] == 30 and len(conflicts) == 1
    # A read to show the change, one before the write, one after the 409. kmock stores a patch
    # even when a reaction answers 409, so the fresh read already has weight 30 and nothing is
    # written twice: the change is idempotent.
    assert len(isvc_requests(kmock, "get")) - reads == 3
    assert len(isvc_requests(kmock, "patch")) - writes == 1


async def test_run_rolls_back_without_prometheus_and_records_events(kmock: Any, iris: Path) -> None:
    await cli(iris, "start", "iris", "--name", "v2", "--image", "servekit/predictor:0.2.0")
    obj = stored(kmock, ISVCS, "iris")
    kmock.objects[ISVCS, "models", "iris"] = {**obj, "status": standard_status("v2", ready=True)}
    nowhere = f"http://127.0.0.1:{free_port()}"
    code, out, _ = await cli(
        iris, "run", "iris", "--prometheus-url", nowhere, "--interval", "1s", "--threshold", "1", "--poll", "0.2"
    )
    assert code == 1, out
    assert out.splitlines()[-1].startswith("models/iris Failed canary=v2"), "plain lines: not a TTY"
    assert "canary" not in stored(kmock, ISVCS, "iris")["spec"]
    state = json.loads(stored(kmock, CONFIGMAPS, "iris-canary-history")["data"]["rollout.json"])
    assert "servekit.dev/canary-rollout" not in stored(kmock, ISVCS, "iris")["metadata"].get("annotations", {})
    assert state["phase"] == "Failed" and "cannot be reached" in state["message"]
    events = [e.data for e in kmock["post"] if "/events" in str(e.url)]
    assert [e["reason"] for e in events] == ["Started", "RolledBack"]
    target = events[-1]["involvedObject"]
    assert (target["kind"], target["name"], target["uid"]) == ("InferenceService", "iris", "1234-abcd")
    assert events[-1]["type"] == "Warning" and events[-1]["source"] == {"component": "servekit-canary"}


async def test_api_errors_exit_2_with_one_line(kmock: Any, iris: Path, tmp_path: Path) -> None:
    code, _, err = await cli(iris, "promote", "missing")
    assert code == 2 and err == "servekit-canary: error: InferenceService models/missing not found\n"
    unreachable = kubeconfig(tmp_path, f"http://127.0.0.1:{free_port()}")
    code, _, err = await cli(unreachable, "status", "iris")
    assert code == 2 and err.startswith("servekit-canary: error: reading InferenceService models/iris: cannot reach")


ANALYSES = kmock_lib.resource("servekit.dev", "v1alpha1", "canaryanalyses")


def discoverable(kmock: Any) -> None:
    """The API discovery kopf reads at start-up (a real API server serves it by itself)."""
    info = kmock_lib.ResourceInfo
    kmock.resources[ANALYSES] = info(
        namespaced=True, kind="CanaryAnalysis", singular="canaryanalysis", verbs={"get", "list", "watch", "patch"},
        subresources={"status"},
    )  # fmt: skip
    kmock.resources[kmock_lib.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")] = info(
        namespaced=False, kind="CustomResourceDefinition", verbs={"get", "list", "watch"}
    )
    kmock.resources[kmock_lib.resource("", "v1", "namespaces")] = info(
        namespaced=False, kind="Namespace", verbs={"get", "list", "watch"}
    )
    kmock.resources[EVENTS] = info(namespaced=True, kind="Event", verbs={"create"})


async def test_the_controller_rolls_back_through_kopf(kmock: Any, iris: Path) -> None:
    """`servekit-canary controller` as a process: kopf finds the CanaryAnalysis, the timer takes the
    rollout to its end, the state lands in the status and the decisions in Events."""
    discoverable(kmock)
    await cli(iris, "start", "iris", "--name", "v2", "--image", "servekit/predictor:0.2.0")
    kmock.objects[ISVCS, "models", "iris"] = {**stored(kmock, ISVCS, "iris"), "status": standard_status("v2", True)}
    kmock.objects[ANALYSES, "models", "iris"] = {
        "apiVersion": "servekit.dev/v1alpha1",
        "kind": "CanaryAnalysis",
        "metadata": {"name": "iris", "namespace": "models", "resourceVersion": "7", "labels": {"team": "ml"}},
        "spec": {"inferenceService": "iris", "interval": "1s", "threshold": 1},
    }
    process = await asyncio.create_subprocess_exec(
        CLI, "controller", "--kubeconfig", str(iris), "--namespace", "models", "--selector", "team=ml",
        "--prometheus-url", f"http://127.0.0.1:{free_port()}", "--tick", "0.5",
        "--liveness", f"http://127.0.0.1:{free_port()}/healthz",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(60):
            await asyncio.sleep(0.5)
            if stored(kmock, ANALYSES, "iris").get("status", {}).get("finished"):
                break
    finally:
        process.terminate()
        log, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    status = stored(kmock, ANALYSES, "iris").get("status", {})
    assert status.get("phase") == "Failed", log.decode()[-3000:]
    assert status["conditions"][0]["status"] == "False" and "cannot be reached" in status["message"]
    assert "canary" not in stored(kmock, ISVCS, "iris")["spec"]
    reasons = [e.data["reason"] for e in kmock["post"] if "/events" in str(e.url) and e.data.get("reason")]
    assert "Started" in reasons and "RolledBack" in reasons
