"""Webhooks against a real HTTP server on loopback: Flagger's payload, 2xx is a yes, anything else
(an error status, a timeout, nobody listening) holds a gate or fails a pre-rollout hook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from predictor.canary import isvc, rollout
from predictor.canary.rollout import Edges
from predictor.canary.spec import AnalysisSpec, Webhook
from predictor.canary.state import Phase, RolloutState
from predictor.canary.webhooks import HttpWebhooks
from tests.support.canary_edges import MemoryEdges, standard_isvc, standard_status
from tests.support.server import free_port

GOOD = {"code=~": 0.0, "servekit_requests_total": 500.0, "servekit_request_duration_seconds": 0.02}


@dataclass
class HookServer:
    """Answers POST /<path> with the status set for that path (default 200) and keeps every body."""

    statuses: dict[str, int] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    received: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for got, body, _ in self.received if got == path]


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    state = HookServer()
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            path = self.path.strip("/")
            length = int(self.headers.get("Content-Length", "0"))
            state.received.append((path, json.loads(self.rfile.read(length)), self.headers.get("Content-Type", "")))
            if path in state.delays:
                release.wait(state.delays[path])
            self.send_response(state.statuses.get(path, 200))
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"not now")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def sender() -> Iterator[HttpWebhooks]:
    webhooks = HttpWebhooks()
    yield webhooks
    webhooks.close()


def hook(hooks: HookServer, name: str, kind: str, timeout: str = "5s") -> Webhook:
    return Webhook(name=name, type=kind, url=hooks.url(name), timeout=timeout, metadata={"team": "ml"})  # type: ignore[arg-type]


def test_2xx_is_a_yes_and_the_payload_is_flaggers(hooks: HookServer, sender: HttpWebhooks) -> None:
    payload = {"name": "iris", "namespace": "models", "phase": "Progressing", "checksum": "abc", "metadata": {"a": "b"}}
    answer = sender.send(hook(hooks, "gate", "confirm-rollout"), payload)
    assert answer.ok and answer.detail == "HTTP 200"
    ((path, body, content_type),) = hooks.received
    assert path == "gate" and body == payload and content_type == "application/json"


@pytest.mark.parametrize("status", [403, 404, 500, 503])
def test_any_other_status_is_a_no_with_the_answer(hooks: HookServer, sender: HttpWebhooks, status: int) -> None:
    hooks.statuses["gate"] = status
    answer = sender.send(hook(hooks, "gate", "confirm-promotion"), {})
    assert not answer.ok and answer.detail == f"HTTP {status} not now"


def test_a_timeout_is_a_no(hooks: HookServer, sender: HttpWebhooks) -> None:
    hooks.delays["slow"] = 5.0
    answer = sender.send(hook(hooks, "slow", "pre-rollout", timeout="0.3s"), {})
    assert not answer.ok and "ReadTimeout" in answer.detail


def test_nobody_listening_is_a_no(sender: HttpWebhooks) -> None:
    url = f"http://127.0.0.1:{free_port()}/gone"
    answer = sender.send(Webhook(name="gone", type="confirm-rollout", url=url), {})
    assert not answer.ok and answer.detail.startswith(f"no answer from {url}: ConnectError")


def run_with_real_hooks(hooks: HookServer, spec: AnalysisSpec, looks: int) -> tuple[RolloutState, MemoryEdges]:
    memory = MemoryEdges()
    memory.isvcs.add(isvc.start(standard_isvc("iris"), "v2", image="x:2"))
    memory.isvcs.set_status("models", "iris", standard_status("v2", ready=True))
    memory.metrics.answers = dict(GOOD)
    webhooks = HttpWebhooks()
    edges = Edges(memory.isvcs, memory.history, memory.events, memory.metrics, webhooks, memory.clock)
    current = RolloutState()
    try:
        for _ in range(looks):
            current = rollout.step(edges, spec, "models", "iris", current)
            memory.clock.advance(spec.interval_seconds)
    finally:
        webhooks.close()
    return current, memory


def test_a_confirm_promotion_veto_holds_the_rollout(hooks: HookServer) -> None:
    hooks.statuses["approve"] = 403
    spec = AnalysisSpec(steps=[50], interval="10s", webhooks=[hook(hooks, "approve", "confirm-promotion")])
    held, memory = run_with_real_hooks(hooks, spec, looks=4)
    assert held.phase == Phase.PAUSED and "confirm-promotion holds the promotion: approve: HTTP 403" in held.message
    assert memory.isvcs.get("models", "iris")["spec"]["canary"][0]["trafficPercent"] == 50
    asked = hooks.bodies("approve")
    assert len(asked) == 3, "asked at every analysis after the last step"
    assert asked[0]["metadata"] == {"team": "ml", "type": "confirm-promotion", "weight": "50", "canary": "v2"}
    assert asked[0]["checksum"] == held.checksum and asked[0]["phase"] == "Progressing"


def test_events_reach_event_hooks_and_their_answers_do_not_matter(hooks: HookServer) -> None:
    hooks.statuses["notify"] = 500
    spec = AnalysisSpec(steps=[50], interval="10s", webhooks=[hook(hooks, "notify", "event")])
    final, _ = run_with_real_hooks(hooks, spec, looks=3)
    assert final.phase == Phase.SUCCEEDED
    messages = [body["metadata"]["eventMessage"] for body in hooks.bodies("notify")]
    assert messages[0].startswith("analysis started") and messages[-1].endswith("promoted")


def test_a_rollback_hook_aborts_the_rollout(hooks: HookServer) -> None:
    spec = AnalysisSpec(steps=[20, 50], interval="10s", webhooks=[hook(hooks, "abort", "rollback")])
    final, memory = run_with_real_hooks(hooks, spec, looks=3)
    assert final.phase == Phase.FAILED and "the rollback hook abort asked for it" in final.message
    assert "canary" not in memory.isvcs.get("models", "iris")["spec"]
