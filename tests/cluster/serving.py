"""What the serving tests on the real node share: the chart installed with the image built here,
v2 calls through KServe's Gateway on the InferenceService's host, the answers the model itself
gives, and steady traffic that counts what failed.

Traffic goes only to the harness's gateway on 127.0.0.1; every loop is bounded in time."""

from __future__ import annotations

import copy
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import helm_python
import httpx
import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris

from predictor.examples import sklearn_iris
from tests.cluster.cluster import PREDICTOR_SELECTOR, Cluster
from tests.cluster.real_node import CHART_VALUES, REPO_ROOT
from tests.cluster.workload import the_one
from tests.support.rendering import parse_documents

CONTROLPLANE = REPO_ROOT / "hack" / "controlplane.sh"

MODEL = "iris"
# Every fifth iris flower: all three classes, rows the model was trained on and rows it was not.
ROWS = load_iris().data[::5].astype(np.float32)
LOAD_SECONDS_LIMIT = 240  # a traffic loop stops by itself after this, whatever happens


def on_real_node(values: dict[str, Any]) -> dict[str, Any]:
    """Chart values with the image built here and the predictor on the real node."""
    merged = copy.deepcopy(values)
    for key, extra in CHART_VALUES.items():
        merged[key] = {**merged.get(key, {}), **extra}
    return merged


def expected_answer(work: Path, rows: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Labels and probabilities of the iris example model, computed here with scikit-learn: the
    model the image bakes in is built the same way from the same packaged data."""
    folder = work / "expected-iris"
    sklearn_iris.build(folder)
    estimator = joblib.load(folder / "model.joblib")
    return [int(label) for label in estimator.predict(rows)], estimator.predict_proba(rows)


def isvc_host(cluster: Cluster, namespace: str, name: str) -> str:
    isvc = cluster.get("inferenceservice", name, namespace)
    assert isvc is not None, f"no InferenceService {namespace}/{name}"
    url = isvc.get("status", {}).get("url")
    assert url, f"KServe wrote no status.url for {namespace}/{name}: {isvc.get('status')}"
    host = urlparse(url).hostname
    assert host is not None
    return host


def infer_body(rows: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [{"name": "features", "datatype": "FP32", "shape": list(rows.shape), "data": rows.ravel().tolist()}]
    }


def infer(gateway: str, host: str, rows: np.ndarray, timeout: float = 30) -> httpx.Response:
    return httpx.post(
        f"{gateway}/v2/models/{MODEL}/infer", json=infer_body(rows), headers={"Host": host}, timeout=timeout
    )


def outputs(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, f"{response.status_code}: {response.text[:500]}"
    return {output["name"]: output for output in response.json()["outputs"]}


@dataclass
class SteadyTraffic:
    """Requests one after another to the InferenceService through the gateway, from a thread,
    until stopped; every failure is kept with what it was."""

    gateway: str
    host: str
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SteadyTraffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        deadline = time.monotonic() + LOAD_SECONDS_LIMIT
        row = ROWS[:1]
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                self.sent += 1
                try:
                    response = client.post(
                        f"{self.gateway}/v2/models/{MODEL}/infer", json=infer_body(row), headers={"Host": self.host}
                    )
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                time.sleep(0.02)

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Until `count` more requests have been sent (the loop is known to run)."""
        target, deadline = self.sent + count, time.monotonic() + timeout
        while self.sent < target:
            assert time.monotonic() < deadline, f"only {self.sent} requests sent in {timeout}s"
            time.sleep(0.1)

    @property
    def failed_share(self) -> float:
        return len(self.failures) / max(self.sent, 1)


RELEASE = "iris"
# Standard mode, no autoscaler, nothing that needs a component this harness does not run.
BASE_VALUES: dict[str, Any] = {
    "fullnameOverride": "iris",
    "autoscaling": {"class": "none", "minReplicas": 1, "maxReplicas": 1},
    "metrics": {"serviceMonitor": {"enabled": True}},
    "tests": {"enabled": True},
}
READY_TIMEOUT = 240


def install(
    cluster: Cluster, helm: helm_python.Config, chart: helm_python.Chart, namespace: str, values: dict[str, Any]
) -> str:
    rendered = parse_documents(helm.install(chart, RELEASE, on_real_node(values))["manifest"])
    name = the_one(rendered, "InferenceService")["metadata"]["name"]
    cluster.wait_for_isvc(namespace, name, timeout=READY_TIMEOUT)
    return str(name)


def predictor_pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return cluster.list("pods", namespace, f"serving.kserve.io/inferenceservice={name},{PREDICTOR_SELECTOR}")


def gateway(cluster: Cluster) -> str:
    if cluster.gateway_url is None:
        pytest.skip("no SERVEKIT_GATEWAY_URL: the cluster was not started by hack/controlplane.sh up")
    return cluster.gateway_url


def put_model(cluster: Cluster, folder: Path, uri: str) -> None:
    result = controlplane(cluster, "put-model", str(folder), uri)
    assert result.returncode == 0, result.stderr


def controlplane(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    state = cluster.kubeconfig.parent
    command = ["bash", str(CONTROLPLANE), "--state-dir", str(state), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def s3_values(cluster: Cluster, namespace: str, uri: str) -> dict[str, Any]:
    """Values for a model at `uri`, read with the store's credentials as KServe expects them."""
    credentials = controlplane(cluster, "s3-credentials", namespace)
    assert credentials.returncode == 0, credentials.stderr
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=credentials.stdout)
    return {**BASE_VALUES, "model": {"storageUri": uri}, "serviceAccount": {"create": False, "name": "servekit-s3"}}


def s3_client_env(cluster: Cluster) -> dict[str, str]:
    """The AWS tools' variables for the harness's object store: its endpoint, region and keys."""
    if cluster.s3_url is None:
        pytest.skip("no SERVEKIT_S3_URL: the cluster was not started by hack/controlplane.sh up")
    keys = dict(
        line.split("=", 1) for line in (cluster.kubeconfig.parent / "s3" / "credentials.env").read_text().splitlines()
    )
    return {
        "AWS_ENDPOINT_URL": cluster.s3_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": keys["S3_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": keys["S3_SECRET_ACCESS_KEY"],
    }
