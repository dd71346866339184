"""`hack/controlplane.sh down` takes away everything `up` put on the machine: processes, mounts,
network namespaces, links, firewall chains, cgroups, the kubelet's log links, the forwarding
switch. Its own package, so it runs after tests/cluster has taken the shared control plane down:
there is one real node per machine."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.real_node import NODE_NAME, on_real_node, restricted_container

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTROLPLANE = REPO_ROOT / "hack" / "controlplane.sh"
SANDBOX_IMAGE = "localhost/servekit/pause:3.10"
NODE_BRIDGE = "servekit0"


def run(*command: str, timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)


def live_processes() -> set[str]:
    """Names of the machine's processes (as the kernel cuts them, 15 characters), zombies left out."""
    names = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone while we looked
        name, state = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2]
        if state != "Z":
            names.add(name)
    return names


def machine_state() -> dict[str, object]:
    """What `up` may change on the machine, read without changing anything."""
    chains = {
        (tool, line.split()[0])
        for tool in ("iptables-save", "ip6tables-save")
        for line in run(tool).stdout.splitlines()
        if line.startswith(":")
    }
    netns = sorted(os.listdir("/var/run/netns")) if os.path.isdir("/var/run/netns") else []
    links = sorted(line.split(":")[1].strip().split("@")[0] for line in run("ip", "-o", "link").stdout.splitlines())
    mounts = sorted(line.split()[1] for line in Path("/proc/mounts").read_text().splitlines())
    cgroups = sorted(str(p) for p in Path("/sys/fs/cgroup").glob("*/servekit-node"))
    log_links = sorted(os.listdir("/var/log/containers")) if os.path.isdir("/var/log/containers") else []
    processes = sorted(live_processes() & {"containerd", "containerd-shim", "kubelet", "kube-proxy"})
    return {
        "firewall chains": chains,
        "network namespaces": netns,
        "links": links,
        "mounts": mounts,
        "cgroups": cgroups,
        "container log links": log_links,
        "processes": processes,
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
        "containerd's socket folder": Path("/run/servekit-node").exists(),
        "the kubelet's root": Path("/var/lib/servekit-node").exists(),
    }


@pytest.fixture
def node_free_machine() -> Iterator[None]:
    if shutil.which("go") is None or shutil.which("kubectl") is None:
        pytest.skip("no go or kubectl: the control plane is built from Go modules")
    if os.geteuid() != 0 or shutil.which("containerd") is None:
        pytest.skip("the real node needs root and containerd (hack/install-test-tools.sh)")
    if run("ip", "link", "show", NODE_BRIDGE).returncode == 0:
        pytest.skip(f"a real node is already up on this machine (bridge {NODE_BRIDGE}): one node per machine")
    yield


@pytest.mark.timeout(420)
def test_down_removes_everything_up_made(node_free_machine: None, tmp_path: Path) -> None:
    state = tmp_path / "controlplane"
    before = machine_state()
    up = run("bash", str(CONTROLPLANE), "--state-dir", str(state), "up", timeout=300)
    try:
        assert up.returncode == 0, up.stderr[-4000:]
        kubeconfig = up.stdout.strip().splitlines()[-1].removeprefix("export KUBECONFIG=")
        kubectl = ("kubectl", f"--kubeconfig={kubeconfig}")
        # A pod with a volume, a hostPort and a Service: mounts, a network namespace, a veth, and
        # the portmap plugin's and kube-proxy's chains for down to remove.
        container = restricted_container("pause", SANDBOX_IMAGE, ports=[{"containerPort": 8080, "hostPort": 18080}])
        container["volumeMounts"] = [{"name": "scratch", "mountPath": "/scratch"}]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "leftover-check", "namespace": "default", "labels": {"app": "leftover-check"}},
            "spec": on_real_node({"containers": [container], "volumes": [{"name": "scratch", "emptyDir": {}}]}),
        }
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "leftover-check", "namespace": "default"},
            "spec": {"selector": {"app": "leftover-check"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
        applied = run(*kubectl, "apply", "-f", "-", stdin=yaml.safe_dump_all([pod, service]))
        assert applied.returncode == 0, applied.stderr
        ready = run(*kubectl, "wait", "pod/leftover-check", "--for=condition=Ready", "--timeout=90s", timeout=100)
        assert ready.returncode == 0, ready.stderr
        during = machine_state()
        assert during != before, "the node changed nothing on the machine: is it running?"
        assert any(NODE_NAME in line for line in run(*kubectl, "get", "nodes").stdout.splitlines())
    finally:
        down = run("bash", str(CONTROLPLANE), "--state-dir", str(state), "down", timeout=180)
    assert down.returncode == 0, down.stderr[-4000:]
    after = machine_state()
    changed = {what: (before[what], after[what]) for what in before if after[what] != before[what]}
    assert not changed, f"left on the machine by up (before, after down): {changed}"
    assert not state.exists() or not any(state.iterdir())


def kill_node_processes(state: Path) -> None:
    """What a crash or a session ended without `down` leaves: the node's processes gone at once,
    everything they made still on the machine."""
    for name in ("kube-proxy", "kubelet", "containerd"):
        pid = int((state / "pids" / f"{name}.pid").read_text().split()[0])
        pidfd = os.pidfd_open(pid)
        try:
            os.kill(pid, 9)
            # A pidfd turns readable when its process has exited.
            assert select.select([pidfd], [], [], 30)[0], f"{name} (pid {pid}) still runs 30 s after SIGKILL"
        finally:
            os.close(pidfd)


@pytest.mark.timeout(600)
def test_up_refuses_a_running_node_and_reclaims_a_dead_one(node_free_machine: None, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    before = machine_state()
    up_first = run("bash", str(CONTROLPLANE), "--state-dir", str(first), "up", timeout=300)
    try:
        assert up_first.returncode == 0, up_first.stderr[-4000:]
        refused = run("bash", str(CONTROLPLANE), "--state-dir", str(second), "up", timeout=60)
        assert refused.returncode != 0
        assert f"the node of the control plane in {first} runs on this machine" in refused.stderr
        assert not second.exists() or not any(second.iterdir()), "a refused up started something"

        kill_node_processes(first)
        up_second = run("bash", str(CONTROLPLANE), "--state-dir", str(second), "up", timeout=300)
        try:
            assert up_second.returncode == 0, up_second.stderr[-4000:]
            reclaimed = f"removing the node a stopped control plane left on this machine (its state: {first})"
            assert reclaimed in up_second.stderr
            # The dead node's `down` must leave the new node's bridge, sockets and mounts alone.
            down_first = run("bash", str(CONTROLPLANE), "--state-dir", str(first), "down", timeout=180)
            assert down_first.returncode == 0, down_first.stderr[-4000:]
            kubeconfig = up_second.stdout.strip().splitlines()[-1].removeprefix("export KUBECONFIG=")
            kubectl = ("kubectl", f"--kubeconfig={kubeconfig}")
            ready = run(*kubectl, "wait", f"node/{NODE_NAME}", "--for=condition=Ready", "--timeout=30s")
            assert ready.returncode == 0, ready.stderr
            assert Path(f"/sys/class/net/{NODE_BRIDGE}/ifalias").read_text().strip().endswith(f"state={second}")
        finally:
            down_second = run("bash", str(CONTROLPLANE), "--state-dir", str(second), "down", timeout=180)
        assert down_second.returncode == 0, down_second.stderr[-4000:]
    finally:
        run("bash", str(CONTROLPLANE), "--state-dir", str(first), "down", timeout=180)
    after = machine_state()
    changed = {what: (before[what], after[what]) for what in before if after[what] != before[what]}
    assert not changed, f"left on the machine (before, after both downs): {changed}"
