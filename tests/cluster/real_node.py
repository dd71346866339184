"""The control plane's real node (hack/controlplane/node.sh) as tests see it: its name, how a pod
asks for it, and the images built here that its containerd runs.

Pods land on the real node only when they ask: the node carries a NoSchedule taint and a label of
the same key, so every other test keeps running on kwok's simulated nodes."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_NAME = "servekit-node"
NODE_LABEL_KEY = "servekit.dev/node"
NODE_LABEL_VALUE = "real"
POD_NETWORK = ipaddress.ip_network("10.246.0.0/24")
POD_GATEWAY_IP = ipaddress.ip_address("10.246.0.1")
SERVICE_NETWORK = ipaddress.ip_network("10.96.0.0/16")
PREDICTOR_IMAGE = "servekit/predictor:dev"
# KServe's storage initializer, built here from KServe's Python package (hack/image/).
STORAGE_INITIALIZER_IMAGE = "servekit/storage-initializer:dev"

NODE_SELECTOR = {NODE_LABEL_KEY: NODE_LABEL_VALUE}
TOLERATIONS = [{"key": NODE_LABEL_KEY, "operator": "Equal", "value": NODE_LABEL_VALUE, "effect": "NoSchedule"}]
# The chart's values that put the predictor on the real node with the image built here.
CHART_VALUES: dict[str, Any] = {
    "image": {"repository": "servekit/predictor", "tag": "dev", "pullPolicy": "Never"},
    "predictor": {"nodeSelector": NODE_SELECTOR, "tolerations": TOLERATIONS},
}


def on_real_node(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """pod_spec with the node selector and toleration that put it on the real node."""
    return {**pod_spec, "nodeSelector": NODE_SELECTOR, "tolerations": TOLERATIONS}


def restricted_container(name: str, image: str, **fields: Any) -> dict[str, Any]:
    """A container that passes the "restricted" Pod Security Standard, as the chart's does."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        **fields,
    }


def require_images_tool() -> None:
    """Skip, with the reason, where this machine cannot build or run images."""
    for tool in ("buildah", "containerd", "runc"):
        if shutil.which(tool) is None:
            pytest.skip(
                f"no '{tool}' on PATH: the real node's tests need images built here (hack/install-test-tools.sh)"
            )


def load_image(state_dir: Path | None, ref: str) -> None:
    """`hack/controlplane.sh load-image REF` into the node's containerd; fails with its output."""
    args = ["bash", str(REPO_ROOT / "hack" / "controlplane.sh")]
    args += ["--state-dir", str(state_dir)] if state_dir else []
    result = subprocess.run([*args, "load-image", ref], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"load-image {ref} failed (built? `make image`):\n{result.stderr[-3000:]}"
