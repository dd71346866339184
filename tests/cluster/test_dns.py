"""Cluster DNS: the harness's CoreDNS answers a Service's name with its ClusterIP, a headless
Service's with its endpoints, and refuses names outside cluster.local (it forwards nothing).

The queries are plain DNS over UDP, built here (RFC 1035), so no resolver library is needed."""

from __future__ import annotations

import random
import socket
import struct

import pytest

from tests.cluster.cluster import Cluster

TYPE_A = 1
RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_REFUSED = 0, 3, 5


def query_a(server: str, name: str) -> tuple[int, list[str]]:
    """(response code, the A records' addresses) for name, asked of server (HOST:PORT)."""
    host, port = server.rsplit(":", 1)
    ident = random.randrange(1 << 16)
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", TYPE_A, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(packet, (host, int(port)))
        reply, _ = sock.recvfrom(4096)
    got_ident, flags, _, answers, _, _ = struct.unpack(">HHHHHH", reply[:12])
    assert got_ident == ident
    offset = 12 + len(question) + 4
    addresses = []
    for _ in range(answers):
        offset = skip_name(reply, offset)
        kind, _, _, length = struct.unpack(">HHIH", reply[offset : offset + 10])
        offset += 10
        if kind == TYPE_A:
            addresses.append(socket.inet_ntoa(reply[offset : offset + length]))
        offset += length
    return flags & 0xF, sorted(addresses)


def skip_name(packet: bytes, offset: int) -> int:
    while True:
        length = packet[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return offset + 2
        offset += 1 + length


def wait_resolved(cluster: Cluster, server: str, name: str, count: int) -> tuple[int, list[str]]:
    """The answer for name once it holds count addresses (CoreDNS learns of objects by watching)."""

    def answered() -> tuple[int, list[str]] | None:
        answer = query_a(server, name)
        return answer if len(answer[1]) == count else None

    return cluster.wait_until(answered, 30, f"CoreDNS to answer {name} with {count} addresses")


@pytest.fixture
def dns_server(cluster: Cluster) -> str:
    if cluster.dns_server is None:
        pytest.skip("no SERVEKIT_DNS_SERVER: the cluster was not started by hack/controlplane.sh up")
    return cluster.dns_server


def test_service_name_resolves_to_its_cluster_ip(cluster: Cluster, namespace: str, dns_server: str) -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    cluster.apply([service], namespace)
    created = cluster.get("service", "web", namespace)
    assert created is not None
    cluster_ip = created["spec"]["clusterIP"]
    name = f"web.{namespace}.svc.cluster.local"
    assert wait_resolved(cluster, dns_server, name, 1) == (RCODE_NOERROR, [cluster_ip])


def test_headless_service_resolves_to_its_endpoints(cluster: Cluster, namespace: str, dns_server: str) -> None:
    addresses = ["10.246.200.7", "10.246.200.8"]
    cluster.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "peers"},
                "spec": {"clusterIP": "None", "ports": [{"port": 8080}]},
            },
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": "peers-1", "labels": {"kubernetes.io/service-name": "peers"}},
                "addressType": "IPv4",
                "ports": [{"port": 8080}],
                "endpoints": [{"addresses": [address], "conditions": {"ready": True}} for address in addresses],
            },
        ],
        namespace,
    )
    name = f"peers.{namespace}.svc.cluster.local"
    assert wait_resolved(cluster, dns_server, name, 2) == (RCODE_NOERROR, addresses)


def test_unknown_names_get_no_address(cluster: Cluster, namespace: str, dns_server: str) -> None:
    assert query_a(dns_server, f"absent.{namespace}.svc.cluster.local") == (RCODE_NXDOMAIN, [])
    # Outside cluster.local CoreDNS serves no zone and forwards nothing: there is no network out.
    assert query_a(dns_server, "example.com") == (RCODE_REFUSED, [])
