"""hack/deploy_kustomization.py, the kustomization hack/deploy.sh puts on top of a committed one:
the image it names, and the imagePullPolicy patch, which must reach every canary that brings its
own containers and no other (a JSON patch `add` under a missing path fails the whole apply)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.harness import HACK_DIR, REPO_ROOT

SCRIPT = HACK_DIR / "deploy_kustomization.py"
TAG_ARGS = ["--resource", "../overlay", "--namespace", "models", "--image-repository", "reg.local:5000/p"]


def isvc(name: str, canaries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"containers": [{"name": "kserve-container"}]}, "canary": canaries},
    }


def write(rendered: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], input=rendered, capture_output=True, text=True, timeout=30, check=False
    )


def kustomization(rendered: str, *args: str) -> dict[str, Any]:
    result = write(rendered, *args)
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


def patch_paths(written: dict[str, Any]) -> list[tuple[str, str, str]]:
    (patch,) = written["patches"]
    assert patch["target"] == {"group": "serving.kserve.io", "kind": "InferenceService"}
    return [(op["op"], op["path"], op["value"]) for op in yaml.safe_load(patch["patch"])]


def test_only_canaries_with_containers_get_a_pull_policy() -> None:
    canaries = [
        {"name": "v2", "predictor": {"model": {"storageUri": "s3://m/2"}}},
        {"name": "v3", "predictor": {"containers": [{"name": "kserve-container"}]}},
    ]
    service = {"apiVersion": "v1", "kind": "Service", "spec": {"canary": [{"predictor": {"containers": [{}]}}]}}
    rendered = yaml.safe_dump_all([service, isvc("iris", canaries)])
    written = kustomization(rendered, *TAG_ARGS, "--image-tag", "1.0", "--pull-policy", "IfNotPresent")
    assert patch_paths(written) == [
        ("replace", "/spec/predictor/containers/0/imagePullPolicy", "IfNotPresent"),
        ("add", "/spec/canary/1/predictor/containers/0/imagePullPolicy", "IfNotPresent"),
    ]
    assert written["namespace"] == "models"
    assert written["resources"] == ["../overlay"]
    # "1.0" stays a string: kustomize would not take the number 1.0 as a tag.
    assert written["images"] == [{"name": "servekit/predictor", "newName": "reg.local:5000/p", "newTag": "1.0"}]


def test_a_digest_replaces_the_tag() -> None:
    rendered = yaml.safe_dump(isvc("iris", []))
    written = kustomization(rendered, *TAG_ARGS, "--image-digest", "sha256:ab", "--pull-policy", "Never")
    assert written["images"] == [{"name": "servekit/predictor", "newName": "reg.local:5000/p", "digest": "sha256:ab"}]
    assert patch_paths(written) == [("replace", "/spec/predictor/containers/0/imagePullPolicy", "Never")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image-tag", "dev", "--pull-policy", "Sometimes"], "invalid choice: 'Sometimes'"),
        (["--image-tag", "dev", "--image-digest", "sha256:ab", "--pull-policy", "Never"], "not allowed with"),
    ],
)
def test_bad_arguments_exit_2_with_the_problem_named(args: list[str], message: str) -> None:
    result = write("", *TAG_ARGS, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_input_that_is_not_yaml_is_an_error() -> None:
    result = write("kind: [unclosed", *TAG_ARGS, "--image-tag", "dev", "--pull-policy", "Never")
    assert result.returncode == 1
    assert "stdin is not the YAML kubectl kustomize writes" in result.stderr


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (it renders the overlays)")
def test_the_standard_canary_overlay_deploys_the_local_image_with_never(tmp_path: Path) -> None:
    """The round trip deploy.sh makes: render, write the kustomization beside it, render that."""
    overlay = REPO_ROOT / "manifests" / "overlays" / "standard-canary"
    rendered = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, check=True)
    (tmp_path / "work").mkdir()
    shutil.copytree(REPO_ROOT / "manifests", tmp_path / "manifests")
    args = ["--resource", "../manifests/overlays/standard-canary", "--namespace", "models"]
    args += ["--image-repository", "servekit/predictor", "--image-tag", "dev", "--pull-policy", "Never"]
    result = write(rendered.stdout, *args)
    assert result.returncode == 0, result.stderr
    (tmp_path / "work" / "kustomization.yaml").write_text(result.stdout)
    final = subprocess.run(["kubectl", "kustomize", str(tmp_path / "work")], capture_output=True, text=True, check=True)
    (service,) = [doc for doc in yaml.safe_load_all(final.stdout) if doc and doc["kind"] == "InferenceService"]
    containers = [service["spec"]["predictor"]["containers"][0]]
    containers += [canary["predictor"]["containers"][0] for canary in service["spec"]["canary"]]
    assert [(c["image"], c["imagePullPolicy"]) for c in containers] == [("servekit/predictor:dev", "Never")] * 2
    assert service["metadata"]["namespace"] == "models"
