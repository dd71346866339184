"""The control plane for the cluster tests (marker `cluster`), and the fixtures tests build on.

Fixtures:
- `cluster` (package scope: one for all of tests/cluster, sub-packages included): a
  `tests.cluster.cluster.Cluster` for the control plane of `hack/controlplane.sh`: real etcd,
  kube-apiserver (Pod Security admission on), kube-controller-manager, kube-scheduler, kwok's
  simulated nodes (one with `nvidia.com/gpu`), KServe's controller manager with its webhooks,
  servekit-gateway serving KServe's Gateway, versitygw (S3) and CoreDNS. `up` runs before the
  first cluster test and `down` after the last,
  so the rest of the session runs without it; a control plane that was already up is used and
  left up. With SERVEKIT_KUBECONFIG set, that cluster is used instead and nothing is started or
  stopped (SERVEKIT_GATEWAY_URL, SERVEKIT_S3_URL and SERVEKIT_DNS_SERVER are then read from the
  environment). Every test using it is skipped, with one line, where `go` or `kubectl` is missing.
  Its API: `kubeconfig` (Path), `versions` (hack/versions.env), `kserve_version`, `exports` (the
  `export` lines of `up`), `gateway_url`, `s3_url`, `dns_server` (None with SERVEKIT_KUBECONFIG),
  `kubectl(*args, stdin=, check=, timeout=)`, `apply(objects, namespace, *flags)`,
  `get(kind, name, namespace)`, `list(kind, namespace, selector)`, `names(...)`,
  `wait_until(check, timeout, what)`, `wait_for_isvc(namespace, name, timeout, caught_up=)`,
  `isvc_deployments(namespace, isvc)`, `describe_isvc(namespace, name)`.
- `make_namespace` (function): `make_namespace(prefix) -> str` creates a namespace that enforces the
  "restricted" Pod Security Standard; every namespace it made is deleted after the test.
- `namespace` (function): one such namespace.
- `helm` (function): a `helm_python.Config` on the cluster whose releases go to `namespace`.
- `scraped` (package scope): predictor processes on loopback, scraped by Debian's Prometheus as
  the pods KServe made (tests/cluster/scraped_pods.py), for the canary analysis on real metrics.
- `real_node_images` (package scope): the predictor and storage-initializer images built here
  (`make images`) loaded into the real node's containerd (tests/cluster/real_node.py says how a pod asks for that node).
- `canary_crd` (function): the CanaryAnalysis CRD applied from the chart's file and Established.
- `controllers` (function): a list the test appends `servekit-canary controller` processes
  (tests/cluster/canary_tool.py's `ControllerProcess`) to; each is stopped after the test.

The components are built before pytest runs (`make test` runs `hack/controlplane.sh build`): a
cold build takes far longer than a test's timeout, so an unbuilt control plane fails the fixture
with the command to run, rather than building inside a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import helm_python
import pytest

from tests.cluster.canary_tool import ControllerProcess
from tests.cluster.cluster import Cluster
from tests.cluster.real_node import (
    NODE_NAME,
    PREDICTOR_IMAGE,
    STORAGE_INITIALIZER_IMAGE,
    load_image,
    require_images_tool,
)
from tests.cluster.scraped_pods import ScrapedPods, scraped_pods
from tests.pins import read_versions
from tests.support.rendering import CHART_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTROLPLANE = REPO_ROOT / "hack" / "controlplane.sh"
KUBECONFIG_ENV = "SERVEKIT_KUBECONFIG"
DATA_PLANE_ENV = ("SERVEKIT_GATEWAY_URL", "SERVEKIT_S3_URL", "SERVEKIT_DNS_SERVER")
RESTRICTED_LABELS = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
# A warm `up` takes well under a minute; the first test also pays for it.
UP_TIMEOUT = 240
CANARY_CRD_FILE = CHART_DIR / "crds" / "canaryanalyses.servekit.dev.yaml"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the control plane carries the `cluster` marker and room for a warm `up`."""
    for item in items:
        if "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.timeout(UP_TIMEOUT + 60))


def run_controlplane(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(CONTROLPLANE), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def kubeconfig_from_up(output: str) -> Path:
    last = output.strip().splitlines()[-1] if output.strip() else ""
    prefix = "export KUBECONFIG="
    assert last.startswith(prefix), f"`hack/controlplane.sh up` did not end with {prefix}PATH: {last!r}"
    return Path(last.removeprefix(prefix))


def exports_from_up(output: str) -> dict[str, str]:
    """Every `export NAME=VALUE` line of `up`'s standard output."""
    exports = {}
    for line in output.splitlines():
        if line.startswith("export ") and "=" in line:
            name, value = line.removeprefix("export ").split("=", 1)
            exports[name] = value
    return exports


def start_control_plane() -> tuple[Path, dict[str, str], bool]:
    """(kubeconfig, the export lines of `up`, whether this session started it)."""
    for tool in ("go", "kubectl"):
        if shutil.which(tool) is None:
            pytest.skip(
                f"no '{tool}' on PATH: the cluster tests run on hack/controlplane.sh, built from Go modules "
                f"(or set {KUBECONFIG_ENV} to a cluster that runs KServe)"
            )
    built = run_controlplane("--check", "build", timeout=60)
    if built.returncode != 0:
        pytest.fail(f"{built.stderr.strip()}\n(`make test` builds it before pytest runs)", pytrace=False)
    was_up = run_controlplane("status", timeout=60).returncode == 0
    up = run_controlplane("up", timeout=UP_TIMEOUT)
    if up.returncode != 0:
        pytest.fail(f"hack/controlplane.sh up failed:\n{up.stderr[-4000:]}", pytrace=False)
    return kubeconfig_from_up(up.stdout), exports_from_up(up.stdout), not was_up


@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    configured = os.environ.get(KUBECONFIG_ENV)
    if configured:
        # The data plane's addresses of that cluster, where the caller has them (the tests that
        # need one skip without it).
        exports = {name: os.environ[name] for name in DATA_PLANE_ENV if os.environ.get(name)}
        yield Cluster(Path(configured), read_versions(), exports)
        return
    kubeconfig, exports, started = start_control_plane()
    yield Cluster(kubeconfig, read_versions(), exports)
    if started:
        down = run_controlplane("down", timeout=120)
        assert down.returncode == 0, f"hack/controlplane.sh down failed:\n{down.stderr}"


@pytest.fixture
def make_namespace(cluster: Cluster) -> Iterator[Callable[[str], str]]:
    made: list[str] = []

    def make(prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        labels = [f"{key}={value}" for key, value in RESTRICTED_LABELS.items()]
        cluster.kubectl("create", "namespace", name)
        cluster.kubectl("label", "namespace", name, *labels)
        made.append(name)
        return name

    yield make
    for name in made:
        # Not waited for: KServe's finalizers and the namespace controller finish it in the background.
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def namespace(make_namespace: Callable[[str], str]) -> str:
    return make_namespace("test")


@pytest.fixture
def helm(cluster: Cluster, namespace: str) -> Iterator[helm_python.Config]:
    with helm_python.Config(kubeconfig_path=cluster.kubeconfig, namespace=namespace) as config:
        yield config


@pytest.fixture(scope="package")
def scraped(tmp_path_factory: pytest.TempPathFactory, chart: helm_python.Chart) -> Iterator[ScrapedPods]:
    with scraped_pods(tmp_path_factory.mktemp("scraped-pods"), chart) as pods:
        yield pods


@pytest.fixture(scope="package")
def real_node_images(cluster: Cluster) -> None:
    """The predictor and storage-initializer images built here, loaded into the real node's containerd once
    (on a cluster named by SERVEKIT_KUBECONFIG, loading it is the user's part)."""
    if cluster.get("node", NODE_NAME) is None:
        pytest.fail(f"the cluster has no real node {NODE_NAME} (started with --no-node?)", pytrace=False)
    if os.environ.get(KUBECONFIG_ENV):
        return
    require_images_tool()
    for image in (PREDICTOR_IMAGE, STORAGE_INITIALIZER_IMAGE):
        load_image(None, image)


@pytest.fixture
def canary_crd(cluster: Cluster) -> dict[str, Any]:
    """The CRD applied from the chart's file (cluster-scoped: left installed, as Helm leaves it)."""
    cluster.kubectl("apply", "-f", str(CANARY_CRD_FILE))

    def established() -> dict[str, Any] | None:
        found = cluster.get("crd", "canaryanalyses.servekit.dev")
        conditions = {c["type"]: c["status"] for c in (found or {}).get("status", {}).get("conditions", [])}
        return found if conditions.get("Established") == "True" else None

    return cluster.wait_until(established, 30, "the CanaryAnalysis CRD to be established")


@pytest.fixture
def controllers() -> Iterator[list[ControllerProcess]]:
    """Every controller process a test starts is stopped after it."""
    started: list[ControllerProcess] = []
    yield started
    for process in started:
        process.stop()
