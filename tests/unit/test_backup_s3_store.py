"""`--model-store s3://BUCKET[/PREFIX]`: model manifests read over the S3 API.

The S3 calls go to boto3's real client with botocore's Stubber in front of its transport, so each
test states the exact requests (bucket, key) the store must make and the answers it gets. The
same store against a real S3 server (the harness's versitygw) is tests/cluster/test_backup.py."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml
from botocore.response import StreamingBody
from botocore.stub import Stubber

from predictor.backup import models
from predictor.backup.models import FolderStore, ModelError, ModelStore, S3Store

SHA = "cd" * 32


@pytest.fixture
def s3() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def body(manifest: dict[str, Any]) -> dict[str, Any]:
    data = yaml.safe_dump(manifest).encode()
    return {"Body": StreamingBody(io.BytesIO(data), len(data))}


def missing(stubber: Stubber, method: str, bucket: str, key: str, code: str) -> None:
    stubber.add_client_error(
        method, service_error_code=code, http_status_code=404, expected_params={"Bucket": bucket, "Key": key}
    )


@pytest.mark.parametrize(
    ("text", "prefix"),
    [("s3://models", "s3://models"), ("s3://models/", "s3://models"), ("s3://models/iris/", "s3://models/iris")],
)
def test_an_s3_uri_without_a_folder_is_a_store_read_over_the_api(
    s3: tuple[Any, Stubber], text: str, prefix: str
) -> None:
    store = S3Store.parse(text, client=s3[0])
    assert store.prefix == prefix
    assert store.covers(f"{prefix}/v2") and not store.covers(f"{prefix}-old/v2")


@pytest.mark.parametrize("text", ["s3://", "s3:///iris", "s3://models/../other"])
def test_a_bad_s3_store_is_named(text: str) -> None:
    with pytest.raises(ModelError, match=r"expected s3://BUCKET\[/PREFIX\]"):
        S3Store.parse(text, client=object())


def test_the_flag_picks_the_kind_of_store(tmp_path: Any) -> None:
    assert isinstance(ModelStore.parse(f"s3://models={tmp_path}"), FolderStore)
    assert isinstance(ModelStore.parse("s3://models"), S3Store)  # boto3's client: no request yet
    with pytest.raises(ModelError, match=r"expected URI_PREFIX=DIR .* or s3://BUCKET"):
        ModelStore.parse("gs://models")


def test_a_folder_uri_reads_its_model_yaml(s3: tuple[Any, Stubber], manifest: dict[str, Any]) -> None:
    client, stubber = s3
    manifest["artifact"]["sha256"] = SHA
    missing(stubber, "head_object", "models", "iris/v2", "404")
    stubber.add_response("get_object", body(manifest), {"Bucket": "models", "Key": "iris/v2/model.yaml"})
    recorded = models.read_manifest([S3Store.parse("s3://models", client=client)], "s3://models/iris/v2")
    assert recorded["sha256"] == SHA
    assert recorded["manifest"] == "s3://models/iris/v2/model.yaml"


def test_a_uri_naming_the_artifact_reads_the_manifest_beside_it(
    s3: tuple[Any, Stubber], manifest: dict[str, Any]
) -> None:
    client, stubber = s3
    manifest["artifact"]["sha256"] = SHA
    stubber.add_response("head_object", {"ContentLength": 3}, {"Bucket": "models", "Key": "iris/v2/model.joblib"})
    stubber.add_response("get_object", body(manifest), {"Bucket": "models", "Key": "iris/v2/model.yaml"})
    store = S3Store.parse("s3://models", client=client)
    assert models.read_manifest([store], "s3://models/iris/v2/model.joblib")["sha256"] == SHA


def test_a_missing_manifest_names_the_uri_and_the_object(s3: tuple[Any, Stubber]) -> None:
    client, stubber = s3
    missing(stubber, "head_object", "models", "iris/v9", "404")
    missing(stubber, "get_object", "models", "iris/v9/model.yaml", "NoSuchKey")
    store = S3Store.parse("s3://models", client=client)
    expected = r"model s3://models/iris/v9 \(through --model-store s3://models \(S3 API\)\): no model.yaml at s3://models/iris/v9/model.yaml"
    with pytest.raises(ModelError, match=expected):
        models.read_manifest([store], "s3://models/iris/v9")


def test_an_invalid_manifest_in_the_bucket_is_named(s3: tuple[Any, Stubber], manifest: dict[str, Any]) -> None:
    client, stubber = s3
    del manifest["artifact"]
    missing(stubber, "head_object", "models", "iris/v2", "404")
    stubber.add_response("get_object", body(manifest), {"Bucket": "models", "Key": "iris/v2/model.yaml"})
    with pytest.raises(ModelError, match=r"s3://models/iris/v2/model.yaml: artifact: Field required"):
        models.read_manifest([S3Store.parse("s3://models", client=client)], "s3://models/iris/v2")


def test_a_refused_request_says_the_s3_api_failed(s3: tuple[Any, Stubber]) -> None:
    client, stubber = s3
    stubber.add_client_error(
        "head_object",
        service_error_code="AccessDenied",
        http_status_code=403,
        expected_params={"Bucket": "models", "Key": "iris/v2"},
    )
    with pytest.raises(ModelError, match=r"reading s3://models/iris/v2 from the S3 API failed: .*AccessDenied"):
        models.read_manifest([S3Store.parse("s3://models", client=client)], "s3://models/iris/v2")


def test_a_uri_leading_out_of_the_prefix_is_refused(s3: tuple[Any, Stubber]) -> None:
    with pytest.raises(ModelError, match="leads outside --model-store s3://models/iris"):
        models.read_manifest([S3Store.parse("s3://models/iris", client=s3[0])], "s3://models/iris/../secrets")
