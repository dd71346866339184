"""Real metrics for the pods KServe made: kwok's pods run no container, so each predictor pod of an
InferenceService is scraped at a real predictor process on loopback instead, with the pod's own
labels (read from the cluster) as Kubernetes service discovery would give them, relabelled by the
chart's ServiceMonitor (tests/integration/canary_metrics.py). The analysis then queries exactly
the series it would meet on a cluster with the Prometheus Operator.

Processes: `healthy` (the iris model), `failing` (answers 500) and `slow` (0.6 s a request), all
with requests sent to them for a few minutes after each `scrape`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from predictor.canary.queries import standard_app_label
from predictor.examples import sklearn_iris
from tests.cluster.cluster import Cluster
from tests.support.canary_metrics import (
    ScrapingPrometheus,
    TrafficDriver,
    canary_servers,
    chart_service_monitor,
    pod_target,
)
from tests.support.server import Server


@dataclass
class ScrapedPods:
    prometheus: ScrapingPrometheus
    servers: dict[str, Server]
    traffic: TrafficDriver

    @property
    def url(self) -> str:
        return self.prometheus.url

    def scrape(self, cluster: Cluster, namespace: str, isvc: str, behaviour: dict[str, str | None]) -> None:
        """Scrape every pod KServe runs for each Standard-mode predictor name at the process of
        that behaviour (None: never scraped, a canary without series), and wait for its requests.
        Renews the traffic's lease: the fixture lives for the whole package, a test for minutes."""
        self.traffic.keep_going()
        targets: list[dict[str, Any]] = []
        for predictor, server in behaviour.items():
            app = standard_app_label(isvc, predictor)
            pods = cluster.list("pods", namespace, f"app={app}")
            assert pods, f"KServe runs no pod with app={app} in {namespace}"
            if server is not None:
                targets += [pod_target(self.servers[server], namespace, pod["metadata"]["labels"]) for pod in pods]
        self.prometheus.add_targets(f"{namespace}-{isvc}", targets)
        for predictor, server in behaviour.items():
            if server is not None:
                self.prometheus.wait_for_requests(
                    f'namespace="{namespace}",app="{standard_app_label(isvc, predictor)}"'
                )


@contextlib.contextmanager
def scraped_pods(work: Path, chart: Any) -> Iterator[ScrapedPods]:
    iris = work / "models" / "iris"
    sklearn_iris.build(iris)
    servers = canary_servers(work / "models", iris)
    started: list[Server] = []
    try:
        for name, server in servers.items():
            started.append(server.start(work / f"{name}.log"))
        with (
            ScrapingPrometheus(work / "prometheus", chart_service_monitor(chart)) as prometheus,
            TrafficDriver(started) as traffic,
        ):
            yield ScrapedPods(prometheus, servers, traffic)
    finally:
        for server in started:
            server.stop()
