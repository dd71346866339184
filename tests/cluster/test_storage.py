"""The object store: `hack/controlplane.sh put-model` uploads a model folder that a real S3 call
lists and downloads back byte for byte, its errors name the bad input, and `s3-credentials` makes
the Secret and ServiceAccount from which KServe's webhook builds the storage initializer's S3
settings."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.cluster import Cluster
from tests.cluster.conftest import CONTROLPLANE, REPO_ROOT

boto3 = pytest.importorskip("boto3")
ClientError = pytest.importorskip("botocore.exceptions").ClientError

MODEL_FILES = {
    "model.joblib": os.urandom(4096),
    "model-settings.json": b'{"name": "iris"}',
    "sub/dir/notes.txt": b"nested files keep their relative paths",
}


def controlplane(*args: str, state_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    flags = ["--state-dir", str(state_dir)] if state_dir else []
    return subprocess.run(
        ["bash", str(CONTROLPLANE), *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


def state_dir(cluster: Cluster) -> Path:
    """The state folder of the running control plane: the kubeconfig lives in it."""
    return cluster.kubeconfig.parent


def store_keys(cluster: Cluster) -> dict[str, str]:
    """S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, as `up` wrote them into the state folder."""
    lines = (state_dir(cluster) / "s3" / "credentials.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line)


def s3_client(cluster: Cluster, key: str | None = None, secret: str | None = None) -> Any:
    """A boto3 S3 client of the store, with its root keys unless told others."""
    if cluster.s3_url is None:
        pytest.skip("no SERVEKIT_S3_URL: the cluster was not started by hack/controlplane.sh up")
    keys = store_keys(cluster)
    return boto3.client(
        "s3",
        endpoint_url=cluster.s3_url,
        region_name="us-east-1",
        aws_access_key_id=key or keys["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or keys["S3_SECRET_ACCESS_KEY"],
    )


def write_model(folder: Path) -> Path:
    for name, data in MODEL_FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def test_put_model_uploads_every_file_a_real_s3_call_reads_back(cluster: Cluster, tmp_path: Path) -> None:
    s3 = s3_client(cluster)
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    uri = f"s3://{bucket}/iris/v1"
    result = controlplane("--state-dir", str(state_dir(cluster)), "put-model", str(write_model(tmp_path)), uri)
    assert result.returncode == 0, result.stderr
    assert f"made bucket {bucket}" in result.stderr
    expected = {f"iris/v1/{name}" for name in MODEL_FILES}
    assert set(result.stdout.split()) == {f"s3://{bucket}/{key}" for key in expected}
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="iris/v1/")
    assert {obj["Key"] for obj in listed["Contents"]} == expected
    for name, data in MODEL_FILES.items():
        assert s3.get_object(Bucket=bucket, Key=f"iris/v1/{name}")["Body"].read() == data, name
    # A second model into the same bucket: the bucket is reused, the first model stays.
    again = controlplane("--state-dir", str(state_dir(cluster)), "put-model", str(tmp_path), f"s3://{bucket}/iris/v2")
    assert again.returncode == 0, again.stderr
    assert "made bucket" not in again.stderr
    keys = {obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == expected | {key.replace("/v1/", "/v2/") for key in expected}


def test_the_store_refuses_unknown_keys_and_wrong_signatures(cluster: Cluster) -> None:
    with pytest.raises(ClientError) as unknown:
        s3_client(cluster, "nobody", "x" * 48).list_buckets()
    # versitygw v1.8.0's answer to a key it does not know (AWS says 403 InvalidAccessKeyId).
    assert unknown.value.response["Error"]["Code"] == "XAdminUserNotFound"
    with pytest.raises(ClientError) as forged:
        s3_client(cluster, store_keys(cluster)["S3_ACCESS_KEY_ID"], "x" * 48).list_buckets()
    assert forged.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert isinstance(s3_client(cluster).list_buckets()["Buckets"], list)


def test_credentials_file_is_for_its_user_only(cluster: Cluster) -> None:
    path = state_dir(cluster) / "s3" / "credentials.env"
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/folder", "s3://models/iris"], "put-model: /no/such/folder is not a directory"),
        (["{tmp}", "http://models/iris"], "put-model: http://models/iris is not s3://BUCKET[/PREFIX]"),
        (["{tmp}", "s3://Models/iris"], "put-model: s3://Models/iris is not s3://BUCKET[/PREFIX]"),
        (["{tmp}"], "put-model takes DIR and s3://BUCKET[/PREFIX], got 1 arguments"),
    ],
)
def test_put_model_names_the_bad_argument(tmp_path: Path, args: list[str], message: str) -> None:
    result = controlplane("put-model", *[arg.replace("{tmp}", str(tmp_path)) for arg in args])
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_put_model_says_when_the_control_plane_is_down(tmp_path: Path) -> None:
    result = controlplane("put-model", str(tmp_path), "s3://models/iris", state_dir=tmp_path / "no-control-plane")
    assert result.returncode == 1
    assert "the control plane is not up" in result.stderr
    assert "hack/controlplane.sh up" in result.stderr


def test_s3_credentials_feed_kserve_storage_initializer(cluster: Cluster, namespace: str) -> None:
    result = controlplane("--state-dir", str(state_dir(cluster)), "s3-credentials", namespace)
    assert result.returncode == 0, result.stderr
    secret, account = yaml.safe_load_all(result.stdout)
    annotations = secret["metadata"]["annotations"]
    endpoint = annotations["serving.kserve.io/s3-endpoint"]
    assert annotations["serving.kserve.io/s3-usehttps"] == "0"
    assert account["secrets"] == [{"name": "servekit-s3"}]
    cluster.kubectl("apply", "-f", "-", stdin=result.stdout)
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "from-s3"},
        "spec": {
            "predictor": {
                "serviceAccountName": "servekit-s3",
                # What the namespace's "restricted" Pod Security Standard asks of the pod.
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": "s3://models/iris/v1",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                },
            }
        },
    }
    cluster.apply([isvc], namespace)

    def initializer_env() -> dict[str, Any] | None:
        for pod in cluster.list("pods", namespace, "serving.kserve.io/inferenceservice=from-s3"):
            for container in pod["spec"].get("initContainers", []):
                if container["name"] == "storage-initializer":
                    return {env["name"]: env.get("value", env.get("valueFrom")) for env in container["env"]}
        return None

    env = cluster.wait_until(initializer_env, 90, "a predictor pod with KServe's storage initializer")
    assert env["S3_ENDPOINT"] == endpoint
    assert env["AWS_ENDPOINT_URL"] == f"http://{endpoint}"
    assert env["S3_USE_HTTPS"] == "0"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"key": "AWS_ACCESS_KEY_ID", "name": "servekit-s3"}}
    assert env["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"key": "AWS_SECRET_ACCESS_KEY", "name": "servekit-s3"}}


def test_put_model_has_help() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "hack" / "controlplane" / "s3_put.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "s3://BUCKET/PREFIX" in result.stdout
