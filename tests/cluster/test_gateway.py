"""The gateway data plane: requests to SERVEKIT_GATEWAY_URL reach real servers through HTTPRoutes
on KServe's Gateway (hostnames, weights, header matches, gRPC over h2c), and the status KServe
waits for is written. The servers run in a network namespace (tests/cluster/netns_backends.py)."""

from __future__ import annotations

import collections
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.cluster import Cluster
from tests.cluster.conftest import REPO_ROOT
from tests.cluster.netns_backends import Backends, get, netns_backends, service_with_endpoints

CONTROLLER = "servekit.dev/gateway-controller"
GATEWAY_REF = {
    "group": "gateway.networking.k8s.io",
    "kind": "Gateway",
    "namespace": "kserve",
    "name": "kserve-ingress-gateway",
}


@pytest.fixture
def gateway_url(cluster: Cluster) -> str:
    if cluster.gateway_url is None:
        pytest.skip("no SERVEKIT_GATEWAY_URL: the cluster was not started by hack/controlplane.sh up")
    return cluster.gateway_url


@pytest.fixture
def backends() -> Iterator[Backends]:
    with netns_backends() as made:
        yield made


SET_ROUTED = {"name": "x-routed", "value": "canary"}


def route(name: str, hostname: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {"parentRefs": [GATEWAY_REF], "hostnames": [hostname], "rules": rules},
    }


def backend_ref(service: str, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": service, "port": 80}
    if weight is not None:
        ref["weight"] = weight
    return ref


def our_parent_status(cluster: Cluster, namespace: str, name: str) -> dict[str, str] | None:
    """{condition type: status} of the parent entry our controller wrote on the route, or None."""
    found = cluster.get("httproute", name, namespace) or {}
    for parent in found.get("status", {}).get("parents", []):
        if parent["controllerName"] == CONTROLLER:
            return {c["type"]: c["status"] for c in parent["conditions"]}
    return None


def serve_two(cluster: Cluster, namespace: str, backends: Backends) -> None:
    """Servers `a` and `b` and their Services svc-a and svc-b."""
    backends.start("a", 8081)
    backends.start("b", 8082)
    objects = service_with_endpoints("svc-a", backends.address, 8081)
    objects += service_with_endpoints("svc-b", backends.address, 8082)
    cluster.apply(objects, namespace)


def backend_of(url: str, host: str, headers: dict[str, str] | None = None) -> str | None:
    """The name of the server that answered, None when the gateway answered with an error."""
    status, body = get(url, host, headers)
    return body["backend"] if status == 200 and isinstance(body, dict) else None


def wait_routed(cluster: Cluster, url: str, host: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The first 200 answer through the gateway for that host (the route is programmed by then)."""

    def answered() -> dict[str, Any] | None:
        status, body = get(url, host, headers)
        return body if status == 200 and isinstance(body, dict) else None

    return cluster.wait_until(answered, 30, f"the gateway to route {host} to a backend")


def test_route_sends_the_host_to_the_real_server_and_writes_status(
    cluster: Cluster, namespace: str, gateway_url: str, backends: Backends
) -> None:
    serve_two(cluster, namespace, backends)
    host = f"a.{namespace}.example.test"
    cluster.apply([route("to-a", host, [{"backendRefs": [backend_ref("svc-a")]}])], namespace)
    body = wait_routed(cluster, f"{gateway_url}/v2/models/iris/infer?x=1", host)
    assert body["backend"] == "a"
    assert body["path"] == "/v2/models/iris/infer?x=1"
    assert body["host"] == host
    assert body["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert our_parent_status(cluster, namespace, "to-a") == {"Accepted": "True", "ResolvedRefs": "True"}
    status, text = get(f"{gateway_url}/", f"nothing.{namespace}.example.test")
    assert status == 404, text
    assert "no HTTPRoute matches host" in str(text)


def test_weights_split_the_traffic(cluster: Cluster, namespace: str, gateway_url: str, backends: Backends) -> None:
    serve_two(cluster, namespace, backends)
    host = f"split.{namespace}.example.test"
    rules = [{"backendRefs": [backend_ref("svc-a", 1), backend_ref("svc-b", 3)]}]
    cluster.apply([route("split", host, rules)], namespace)
    wait_routed(cluster, gateway_url, host)
    counts = collections.Counter(backend_of(gateway_url, host) for _ in range(400))
    assert set(counts) == {"a", "b"}, counts
    # 75% expected; 400 draws keep a binomial within +-8 points far beyond 3 sigma (2.2 points).
    assert 0.67 <= counts["b"] / 400 <= 0.83, counts
    cluster.apply(
        [route("split", host, [{"backendRefs": [backend_ref("svc-a", 0), backend_ref("svc-b", 1)]}])], namespace
    )
    cluster.wait_until(
        lambda: all(backend_of(gateway_url, host) == "b" for _ in range(20)), 30, "weight 0 to take svc-a out"
    )


def test_header_match_picks_its_rule(cluster: Cluster, namespace: str, gateway_url: str, backends: Backends) -> None:
    serve_two(cluster, namespace, backends)
    host = f"headers.{namespace}.example.test"
    rules = [
        {"backendRefs": [backend_ref("svc-a")]},
        {
            "matches": [{"headers": [{"name": "x-canary", "value": "true"}]}],
            "backendRefs": [backend_ref("svc-b")],
            "filters": [
                {
                    "type": "RequestHeaderModifier",
                    "requestHeaderModifier": {"set": [{"name": "x-routed", "value": "canary"}]},
                }
            ],
        },
    ]
    cluster.apply([route("headers", host, rules)], namespace)
    wait_routed(cluster, gateway_url, host)
    for _ in range(10):
        chosen = [backend_of(gateway_url, host, headers) for headers in ({}, {"X-Canary": "true"}, {"X-Canary": "no"})]
        assert chosen == ["a", "b", "a"]
    _, plain = get(gateway_url, host)
    _, canary = get(gateway_url, host, {"X-Canary": "true"})
    assert isinstance(plain, dict) and isinstance(canary, dict)
    assert canary["headers"]["x-routed"] == "canary"
    assert "x-routed" not in plain["headers"]


def test_missing_service_is_reported_and_answered_500(cluster: Cluster, namespace: str, gateway_url: str) -> None:
    host = f"missing.{namespace}.example.test"
    cluster.apply([route("missing", host, [{"backendRefs": [backend_ref("no-such-service")]}])], namespace)
    conditions = cluster.wait_until(
        lambda: our_parent_status(cluster, namespace, "missing"), 30, "the route's status from servekit-gateway"
    )
    assert conditions == {"Accepted": "True", "ResolvedRefs": "False"}
    status, text = get(gateway_url, host)
    assert status == 500
    assert f"Service {namespace}/no-such-service does not exist" in str(text)


def grpc_echo(gateway_url: str, host: str) -> bytes:
    grpc = pytest.importorskip("grpc")
    target = gateway_url.removeprefix("http://")
    options = [("grpc.default_authority", host), ("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(target, options=options) as channel:
        echo = channel.unary_unary("/servekit.Echo/Echo")
        reply: bytes = echo(b"ping", timeout=10)
        return reply


def test_grpc_passes_when_the_service_port_says_h2c(
    cluster: Cluster, namespace: str, gateway_url: str, backends: Backends
) -> None:
    grpc = pytest.importorskip("grpc")
    backends.start("g", 9000, kind="grpc")
    objects = service_with_endpoints("grpc-h2c", backends.address, 9000, app_protocol="kubernetes.io/h2c")
    objects += service_with_endpoints("grpc-plain", backends.address, 9000)
    h2c_host, plain_host = f"grpc.{namespace}.example.test", f"grpc-plain.{namespace}.example.test"
    objects += [
        route("grpc-h2c", h2c_host, [{"backendRefs": [backend_ref("grpc-h2c")]}]),
        route("grpc-plain", plain_host, [{"backendRefs": [backend_ref("grpc-plain")]}]),
    ]
    cluster.apply(objects, namespace)
    cluster.wait_until(lambda: our_parent_status(cluster, namespace, "grpc-h2c"), 30, "the gRPC route to be accepted")

    def echoed() -> bytes | None:
        try:
            return grpc_echo(gateway_url, h2c_host)
        except grpc.RpcError:
            return None

    assert cluster.wait_until(echoed, 30, "a gRPC call through the gateway") == b"g:ping"
    # Without appProtocol kubernetes.io/h2c the gateway speaks HTTP/1.1 to the backend: gRPC fails.
    with pytest.raises(grpc.RpcError) as failed:
        grpc_echo(gateway_url, plain_host)
    assert failed.value.code() != grpc.StatusCode.OK


# `go test` builds a test binary of its own (client-go and all): on a fresh machine that compile
# alone took 2 min 37 s, past the suite's 120 s per test (a CI failure); go's own limit stays 600 s.
@pytest.mark.timeout(900)
def test_the_gateways_own_go_tests_pass() -> None:
    """servekit-gateway's unit tests (route table, retries after a refused connection), with `go test`."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("no 'go' on PATH: servekit-gateway is built and tested with Go")
    module = REPO_ROOT / "hack" / "controlplane" / "gateway"
    result = subprocess.run(
        [go, "test", "-count=1", "./..."], cwd=module, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ok" in result.stdout, result.stdout
