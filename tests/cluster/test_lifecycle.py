"""`up` and `down` of a second control plane (without the real node: tests/cluster_lifecycle checks
that) in its own state folder: every process `up` started
runs and every port it handed out is served, and after `down` none of them is left."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.cluster.cluster import Cluster
from tests.cluster.conftest import UP_TIMEOUT, exports_from_up, run_controlplane

# Ports a process serves on 127.0.0.1 once `up` returns (the peer and webhook ports included).
SERVED_PORTS = ("ETCD_PORT", "API_PORT", "KSERVE_WEBHOOK_PORT", "GATEWAY_PORT", "S3_PORT", "DNS_READY_PORT")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def running(pid: int, binary: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)") == binary
    except OSError:
        return False


@pytest.mark.timeout(2 * UP_TIMEOUT)
def test_down_leaves_no_process_and_no_port(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # POD_GATEWAY_IP:53 belongs to the control plane the other tests use.
    monkeypatch.delenv("POD_GATEWAY_IP", raising=False)
    state = tmp_path / "second"
    # --no-node: one real node per machine, and the shared control plane has it.
    up = run_controlplane("--state-dir", str(state), "--no-node", "up", timeout=UP_TIMEOUT)
    try:
        assert up.returncode == 0, up.stderr[-4000:]
        exports = exports_from_up(up.stdout)
        ports = dict(line.split("=", 1) for line in (state / "ports.env").read_text().splitlines())
        assert exports["SERVEKIT_GATEWAY_URL"] == f"http://127.0.0.1:{ports['GATEWAY_PORT']}"
        assert exports["SERVEKIT_S3_URL"] == f"http://127.0.0.1:{ports['S3_PORT']}"
        assert exports["SERVEKIT_DNS_SERVER"] == f"127.0.0.1:{ports['DNS_PORT']}"
        pids = {}
        for file in (state / "pids").glob("*.pid"):
            pid, binary = file.read_text().split()
            pids[file.stem] = (int(pid), binary)
        assert {"object-store", "coredns", "gateway", "etcd", "kube-apiserver"} <= set(pids)
        assert all(running(*started) for started in pids.values()), pids
        assert all(listening(int(ports[name])) for name in SERVED_PORTS), ports
    finally:
        down = run_controlplane("--state-dir", str(state), "down", timeout=120)
    assert down.returncode == 0, down.stderr
    left = [name for name, started in pids.items() if running(*started)]
    assert left == [], f"still running after down: {left}"
    served = [name for name in SERVED_PORTS if listening(int(ports[name]))]
    assert served == [], f"still served after down: {served}"
    assert not state.exists()
