"""Webhooks over HTTP: POST Flagger's payload, a 2xx answer is a yes.

Gates (confirm-rollout, confirm-promotion) hold while a hook answers anything else; pre-rollout
failures count as failed checks; a rollback hook that answers 2xx aborts the rollout; event hooks
are told of every decision and their answers are ignored.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from predictor.canary.spec import Webhook, parse_duration
from predictor.canary.state import HookAnswer

logger = logging.getLogger("predictor.canary")


class HttpWebhooks:
    def __init__(self, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client()

    def send(self, hook: Webhook, payload: dict[str, Any]) -> HookAnswer:
        try:
            response = self._client.post(hook.url, json=payload, timeout=parse_duration(hook.timeout))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is not an HTTPError
            logger.warning("webhook %s (%s) at %s failed: %s", hook.name, hook.type, hook.url, exc)
            return HookAnswer(hook.name, False, f"no answer from {hook.url}: {type(exc).__name__}: {exc}")
        ok = response.is_success
        detail = f"HTTP {response.status_code}" + (f" {response.text[:200]}" if not ok and response.text else "")
        return HookAnswer(hook.name, ok, detail)

    def close(self) -> None:
        self._client.close()
