"""The metric source: Prometheus' HTTP API (``GET /api/v1/query``)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import httpx

from predictor.canary.rollout import MetricsUnavailable


class PrometheusSource:
    """Instant queries against one Prometheus; any failure to get an answer is MetricsUnavailable."""

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        self._client = client or httpx.Client(timeout=timeout)
        self._clock = clock

    def values(self, queries: Mapping[str, str]) -> dict[str, float | None]:
        """Every query evaluated at the same instant (Prometheus' ``time`` parameter)."""
        at = f"{self._clock():.3f}"
        return {key: self._value(promql, at) for key, promql in queries.items()}

    def _value(self, promql: str, at: str) -> float | None:
        try:
            response = self._client.get(f"{self.url}/api/v1/query", params={"query": promql, "time": at})
        except httpx.HTTPError as exc:
            raise MetricsUnavailable(f"Prometheus at {self.url} cannot be reached: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise MetricsUnavailable(
                f"Prometheus at {self.url} answered HTTP {response.status_code}, not JSON"
            ) from None
        if body.get("status") != "success":
            raise MetricsUnavailable(f"Prometheus refused {promql!r}: {body.get('error', response.status_code)}")
        return single_number(body.get("data", {}), promql)

    def close(self) -> None:
        self._client.close()


def single_number(data: dict[str, object], promql: str) -> float | None:
    """The value of a scalar or of a one-series vector; None for an empty vector or NaN."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list):
        value = float(result[1])
    elif kind == "vector" and isinstance(result, list):
        if not result:
            return None
        if len(result) > 1:
            raise MetricsUnavailable(
                f"{promql!r} returned {len(result)} series; a check needs one number (aggregate it)"
            )
        value = float(result[0]["value"][1])
    else:
        raise MetricsUnavailable(f"{promql!r} returned a {kind}; a check needs a scalar or one series")
    return None if math.isnan(value) else value
