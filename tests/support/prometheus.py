"""Asking a real Prometheus: an instant query, and waiting for a condition."""

from __future__ import annotations

import time
from typing import Any

import httpx


def wait_until(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """The instant vector, or an AssertionError with Prometheus' own words for bad PromQL."""
    response = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10)
    body = response.json()
    assert body["status"] == "success", f"{promql!r}: {body.get('error')}"
    return list(body["data"]["result"])
