#!/usr/bin/env python3
"""Write the throw-away kustomization hack/deploy.sh applies on top of a committed one.

It points the predictor image at the local build and sets imagePullPolicy on the stable predictor
and on every spec.canary[] entry that brings its own containers (the standard-canary overlay's
v2 does): a canary left at IfNotPresent could not start from an image that was only loaded into
kind. Which canary entries have containers is read from the committed kustomization as
`kubectl kustomize` renders it (on stdin), so the patch never adds to a path that is not there.

Usage: kubectl kustomize DIR | hack/deploy_kustomization.py --resource RELATIVE_DIR --namespace NS
           --image-repository REPO (--image-tag TAG | --image-digest DIGEST) --pull-policy POLICY
           > kustomization.yaml

Needs PyYAML (hack/lib/python.sh finds a Python that has it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import yaml

PROG = "deploy_kustomization.py"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
# The name the committed manifests give the predictor image (manifests/base).
PREDICTOR_IMAGE = "servekit/predictor"


class _BlockStrings(yaml.SafeDumper):
    """Multi-line strings (the patch) as `|` blocks, so the kustomization reads like a hand-written one."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_BlockStrings.add_representer(str, _represent_str)


def canary_container_indexes(documents: Iterable[Any]) -> list[int]:
    """The indexes of spec.canary[] entries with predictor containers, in any InferenceService."""
    indexes: set[int] = set()
    for document in documents:
        if not isinstance(document, dict) or document.get("kind") != "InferenceService":
            continue
        canaries = (document.get("spec") or {}).get("canary") or []
        for index, entry in enumerate(canaries):
            if isinstance(entry, dict) and (entry.get("predictor") or {}).get("containers"):
                indexes.add(index)
    return sorted(indexes)


def pull_policy_patch(indexes: Iterable[int], pull_policy: str) -> list[dict[str, str]]:
    """A JSON patch: the stable predictor's pull policy replaced, each canary's added."""
    operations = [
        {"op": "replace", "path": "/spec/predictor/containers/0/imagePullPolicy", "value": pull_policy},
    ]
    operations += [
        {"op": "add", "path": f"/spec/canary/{index}/predictor/containers/0/imagePullPolicy", "value": pull_policy}
        for index in indexes
    ]
    return operations


def kustomization(resource: str, namespace: str, image: dict[str, str], patch: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": [resource],
        "images": [{"name": PREDICTOR_IMAGE, **image}],
        "patches": [
            {
                "target": {"group": "serving.kserve.io", "kind": "InferenceService"},
                "patch": yaml.safe_dump(patch, sort_keys=False),
            }
        ],
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write hack/deploy.sh's kustomization (stdout) from `kubectl kustomize` output (stdin).",
    )
    parser.add_argument("--resource", required=True, help="the committed kustomization, relative to the new one")
    parser.add_argument("--namespace", required=True, help="the namespace every object goes to")
    parser.add_argument("--image-repository", required=True, help="the predictor image's repository")
    version = parser.add_mutually_exclusive_group(required=True)
    version.add_argument("--image-tag", help="the predictor image's tag")
    version.add_argument("--image-digest", help="the predictor image's digest (sha256:...)")
    parser.add_argument("--pull-policy", required=True, choices=PULL_POLICIES, help="imagePullPolicy to set")
    return parser.parse_args(argv)


def main(argv: list[str], stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    args = parse_args(argv)
    try:
        documents = list(yaml.safe_load_all(stdin))
    except yaml.YAMLError as error:
        print(f"{PROG}: error: stdin is not the YAML kubectl kustomize writes: {error}", file=sys.stderr)
        return 1
    image = {"newName": args.image_repository}
    image |= {"digest": args.image_digest} if args.image_digest else {"newTag": args.image_tag}
    patch = pull_policy_patch(canary_container_indexes(documents), args.pull_policy)
    yaml.dump(kustomization(args.resource, args.namespace, image, patch), stdout, Dumper=_BlockStrings, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
