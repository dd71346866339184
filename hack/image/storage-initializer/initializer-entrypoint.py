#!/opt/venv/bin/python
"""KServe's storage initializer, as the init container KServe injects runs it.

Usage: initializer-entrypoint SRC_URI DEST_PATH [SRC_URI DEST_PATH ...]

KServe's webhook gives the init container only `args` (`<storageUri> /mnt/models`, one pair per
model), so this file is the image's ENTRYPOINT, at the path KServe's own image uses. The download
itself is KServe's `kserve_storage.Storage` (PyPI `kserve-storage`, the release that matches the
kserve 0.21 SDK): s3:// (boto3: AWS_ENDPOINT_URL with its scheme, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, S3_VERIFY_SSL; KServe sets AWS_ENDPOINT_URL from the
ServiceAccount secret's s3-endpoint and s3-usehttps annotations, and kserve-storage 0.21 reads no
S3_ENDPOINT), gs://, http(s)://, hf://, pvc:// and more.
Exit status: 0 downloaded, 1 a download failed (the error names the URI), 2 a bad command line.
"""

from __future__ import annotations

import sys

USAGE = "usage: initializer-entrypoint SRC_URI DEST_PATH [SRC_URI DEST_PATH ...]"


def main(argv: list[str]) -> int:
    if argv in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if len(argv) < 2 or len(argv) % 2 != 0:
        print(
            f"initializer-entrypoint: error: expected pairs of SRC_URI DEST_PATH, got {len(argv)} argument(s): {argv}",
            file=sys.stderr,
        )
        print(USAGE, file=sys.stderr)
        return 2

    # Imported late: --help and argument errors answer without loading the cloud SDKs.
    from kserve_storage import Storage
    from kserve_storage.logging import configure_logging, logger

    configure_logging()
    for src_uri, dest_path in zip(argv[0::2], argv[1::2], strict=True):
        logger.info("downloading %s to %s", src_uri, dest_path)
        try:
            Storage.download(src_uri, dest_path)
        except Exception as error:  # any failure must end the init container with a message
            logger.error("storage initializer: cannot download %s to %s: %s", src_uri, dest_path, error)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
