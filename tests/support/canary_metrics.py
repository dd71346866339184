"""Real metrics for the canary analysis: predictor processes on loopback, scraped by Debian's
Prometheus with the chart's ServiceMonitor relabelings, so the analysis's queries meet exactly the
series a cluster would have. Used by tests/integration/test_canary_prometheus.py (labels written
by the test) and by the cluster tests (labels of the pods KServe really made).

- ``relabel_configs``: the rendered ServiceMonitor's relabelings as Prometheus writes them (the
  Prometheus Operator's translation).
- ``pod_target``: one scrape target carrying the ``__meta_kubernetes_*`` labels Kubernetes service
  discovery gives a pod with these labels, pointing at a predictor process on loopback.
- ``ScrapingPrometheus``: Prometheus with static targets and/or a folder of file_sd target files
  (tests add targets while it runs), scraping every second.
- ``TrafficDriver``: requests to the predictor processes until stopped, each lease bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest
import yaml

from predictor.modeldir.artifacts import sha256_of
from predictor.modeldir.spec import ModelSpec, dump_spec
from tests.integration.faulty_estimator import FaultyEstimator
from tests.support.prometheus import query, wait_until
from tests.support.rendering import CHART_DIR, ci_values, render
from tests.support.server import Server, free_port

ROW = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
TRAFFIC_SECONDS = 300  # a driver pauses by itself this long after its last lease, whatever happens
CANARY_VALUES = CHART_DIR / "ci" / "standard-canary-values.yaml"


def faulty_model(path: Path, estimator: FaultyEstimator, source: str = "raw") -> Path:
    """An iris-shaped model directory whose predictions come from ``estimator``; ``source="label"``
    declares its output a class, so the predictor counts its predicted classes."""
    path.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, path / "model.joblib")
    spec = ModelSpec.model_validate(
        {
            "name": "iris",
            "framework": "sklearn",
            "artifact": {"path": "model.joblib", "sha256": sha256_of(path / "model.joblib")},
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1], "source": source}],
        }
    )
    dump_spec(spec, path)
    return path


def canary_servers(models: Path, iris_dir: Path) -> dict[str, Server]:
    """A healthy iris canary, one whose model raises (answers 500) and one whose model sleeps."""
    return {
        "healthy": Server(iris_dir, "iris"),
        "failing": Server(faulty_model(models / "failing", FaultyEstimator(fail=True)), "iris"),
        "slow": Server(faulty_model(models / "slow", FaultyEstimator(seconds=0.6)), "iris"),
    }


def chart_service_monitor(chart: Any) -> dict[str, Any]:
    """The ServiceMonitor the chart renders for a canary release."""
    return render(chart, ci_values(CANARY_VALUES)).one("ServiceMonitor")


def relabel_configs(monitor: dict[str, Any]) -> list[dict[str, Any]]:
    """The ServiceMonitor's relabelings as Prometheus writes them (the operator's translation)."""
    names = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    (endpoint,) = monitor["spec"]["endpoints"]
    return [{names.get(key, key): value for key, value in rule.items()} for rule in endpoint["relabelings"]]


def meta_label(label: str) -> str:
    """Kubernetes service discovery's name for a pod label (non-alphanumerics become _)."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


def pod_target(server: Server, namespace: str, pod_labels: dict[str, str]) -> dict[str, Any]:
    """One static target with the labels Kubernetes service discovery gives a pod with these labels."""
    labels = {"__meta_kubernetes_namespace": namespace} | {meta_label(k): v for k, v in pod_labels.items()}
    return {"targets": [f"127.0.0.1:{server.http_port}"], "labels": labels}


class ScrapingPrometheus:
    """Debian's Prometheus scraping the given static targets and every ``*.json`` file_sd file in
    ``targets_dir``, with the chart's ServiceMonitor relabelings."""

    def __init__(self, work: Path, monitor: dict[str, Any], static: list[dict[str, Any]] | None = None) -> None:
        self.work, self.targets_dir = work, work / "targets"
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "servekit",
                    "static_configs": static or [],
                    "file_sd_configs": [{"files": [str(self.targets_dir / "*.json")], "refresh_interval": "1s"}],
                    "relabel_configs": relabel_configs(monitor),
                }
            ],
        }
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ScrapingPrometheus:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus is not installed: apt-get install prometheus (.ci/run does)", pytrace=False)
        (self.work / "prometheus.yml").write_text(yaml.safe_dump(self.config))
        with (self.work / "prometheus.log").open("w") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={self.work / 'prometheus.yml'}", f"--storage.tsdb.path={self.work / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until(lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200, 30, "Prometheus ready")
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def add_targets(self, name: str, targets: list[dict[str, Any]]) -> None:
        """Scrape these too (written atomically: Prometheus watches the folder)."""
        partial = self.targets_dir / f".{name}.tmp"
        partial.write_text(json.dumps(targets))
        partial.rename(self.targets_dir / f"{name}.json")

    def wait_for_requests(self, selector: str, at_least: int = 10, timeout: float = 60) -> None:
        """Until the series matching ``selector`` show requests in the last 10 s."""
        promql = f"sum(increase(servekit_requests_total{{{selector}}}[10s])) > {at_least}"
        wait_until(lambda: bool(query(self.url, promql)), timeout, f"requests on {selector}")


class TrafficDriver:
    """Requests to each server until stopped, for at most ``seconds`` at a time (loopback only).

    The bound is a lease, not a lifetime: ``keep_going`` renews it. A package-wide driver (the
    cluster tests' ``scraped``) outlives any fixed bound, and traffic that stopped by itself
    halfway through the package left the later tests waiting for requests that never came."""

    def __init__(self, servers: list[Server], seconds: float = TRAFFIC_SECONDS) -> None:
        self._stop = threading.Event()
        self._until = time.monotonic() + seconds
        self._threads = [threading.Thread(target=self._drive, args=(s,), daemon=True) for s in servers]

    def keep_going(self, seconds: float = TRAFFIC_SECONDS) -> None:
        """Drive traffic for ``seconds`` more from now (never shortens the current lease)."""
        self._until = max(self._until, time.monotonic() + seconds)

    def _drive(self, server: Server) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while not self._stop.is_set():
                if time.monotonic() < self._until:
                    with contextlib.suppress(httpx.TransportError):
                        client.post("/v2/models/iris/infer", json=ROW)
                self._stop.wait(0.03)

    def __enter__(self) -> TrafficDriver:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
