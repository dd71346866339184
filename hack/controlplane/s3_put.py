"""Upload a model folder to the harness's object store: `hack/controlplane.sh put-model DIR URI`.

Every file under DIR goes to s3://BUCKET/PREFIX/<its path relative to DIR>; the bucket is made when
it does not exist. Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the shell
reads them from the state folder)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlparse

import boto3
from botocore.exceptions import BotoCoreError, ClientError


def split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise SystemExit(f"put-model: {uri!r} is not s3://BUCKET[/PREFIX]")
    return parsed.netloc, parsed.path.strip("/")


def main() -> int:
    parser = argparse.ArgumentParser(prog="hack/controlplane.sh put-model", description=__doc__)
    parser.add_argument("--endpoint", required=True, help="the object store's URL")
    parser.add_argument("--region", required=True)
    parser.add_argument("dir", type=Path)
    parser.add_argument("uri")
    args = parser.parse_args()
    bucket, prefix = split_uri(args.uri)
    files = sorted(path for path in args.dir.rglob("*") if path.is_file())
    if not files:
        raise SystemExit(f"put-model: {args.dir} holds no files")
    s3 = boto3.client("s3", endpoint_url=args.endpoint, region_name=args.region)
    try:
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
            print(f"made bucket {bucket}", file=sys.stderr)
        for path in files:
            key = "/".join(part for part in (prefix, path.relative_to(args.dir).as_posix()) if part)
            s3.upload_file(str(path), bucket, key)
            print(f"s3://{bucket}/{key}")
    except (BotoCoreError, ClientError) as error:
        raise SystemExit(f"put-model: uploading to {args.endpoint} failed: {error}") from error
    return 0


if __name__ == "__main__":
    sys.exit(main())
