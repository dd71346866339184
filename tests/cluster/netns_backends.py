"""Real HTTP and gRPC servers behind real Services, for the gateway tests.

The API server refuses loopback addresses in EndpointSlices, so the servers run in a network
namespace the test makes: a veth pair, 10.247.N.1 on the host side and 10.247.N.2 inside (N drawn
per use, away from the node's pod range 10.246.0.0/24 and kwok's 10.244.0.0/16), no route out.
The gateway, a process on the host, reaches them through the veth as it would reach pod addresses
through the node's bridge. Everything made is removed on exit (deleting the namespace deletes the
veth pair). Needs root and `ip` (iproute2).

Each HTTP server answers every request with JSON: its name, the path, the Host header and the
request headers. The gRPC server answers the method /servekit.Echo/Echo with its name and the
request's bytes."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

HTTP_SERVER = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

name, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

class Echo(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"backend": name, "path": self.path, "host": self.headers.get("Host"),
                           "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *args):
        pass

ThreadingHTTPServer((address, port), Echo).serve_forever()
"""

GRPC_SERVER = r"""
import sys
from concurrent import futures
import grpc

name, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

def echo(request, context):
    return name.encode() + b":" + request

handler = grpc.method_handlers_generic_handler(
    "servekit.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[handler])
server.add_insecure_port(f"{address}:{port}")
server.start()
server.wait_for_termination()
"""


@dataclass
class Backends:
    """Servers in one network namespace at `address`; `ports` maps each server's name to its port."""

    namespace: str
    address: str
    ports: dict[str, int] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, port: int, kind: str = "http") -> None:
        code = HTTP_SERVER if kind == "http" else GRPC_SERVER
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, sys.executable, "-c", code, name, self.address, str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.processes.append(process)
        self.ports[name] = port
        wait_listening(self.namespace, self.address, port, process)


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")


def wait_listening(namespace: str, address: str, port: int, process: subprocess.Popen[bytes]) -> None:
    """Until something accepts on address:port inside the namespace (or the server exits)."""
    probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=1).close()"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise AssertionError(f"the server on {address}:{port} exited {process.returncode}: {stderr}")
        done = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", probe], capture_output=True)
        if done.returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {address}:{port} in network namespace {namespace} after 20 s")


@contextmanager
def netns_backends() -> Iterator[Backends]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("the gateway tests put their servers in a network namespace: they need root and iproute2's ip")
    suffix = uuid.uuid4().hex[:6]
    namespace, host_side, inside = f"servekit-gw-{suffix}", f"skgw{suffix}", f"skgwi{suffix}"[:15]
    subnet = random.randrange(1, 255)
    host_address, address = f"10.247.{subnet}.1", f"10.247.{subnet}.2"
    backends = Backends(namespace=namespace, address=address)
    ip("netns", "add", namespace)
    try:
        ip("link", "add", host_side, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", namespace)
        ip("addr", "add", f"{host_address}/30", "dev", host_side)
        ip("link", "set", host_side, "up")
        ip("-n", namespace, "addr", "add", f"{address}/30", "dev", inside)
        ip("-n", namespace, "link", "set", inside, "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        yield backends
    finally:
        for process in backends.processes:
            process.terminate()
        for process in backends.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr:
                process.stderr.close()
        subprocess.run(["ip", "link", "delete", host_side], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True, check=False)


def service_with_endpoints(name: str, address: str, port: int, app_protocol: str | None = None) -> list[dict[str, Any]]:
    """A selector-less Service on port 80 and the EndpointSlice that names address:port as its endpoint."""
    service_port: dict[str, Any] = {"name": "web", "port": 80, "targetPort": port, "protocol": "TCP"}
    slice_port: dict[str, Any] = {"name": "web", "port": port, "protocol": "TCP"}
    if app_protocol:
        service_port["appProtocol"] = app_protocol
        slice_port["appProtocol"] = app_protocol
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"ports": [service_port]}},
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [slice_port],
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        },
    ]


def get(url: str, host: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any] | str]:
    """(status, the JSON body or the text) of a GET to url with that Host header, through no proxy."""
    request = urllib.request.Request(url, headers={"Host": host, **(headers or {})})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            body = response.read().decode()
            return response.status, json.loads(body)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
