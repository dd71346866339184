"""hack/restore.sh (python -m predictor.backup restore) through a whole restore against a stand-in
kubectl that keeps state: a new namespace is created and marked, the InferenceService created; a
second run finds its mark and changes nothing; a drifted object is patched back. The real API
server's side of it is tests/cluster/test_backup.py."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import HACK_DIR, run_script
from tests.support import backups

RESTORE = HACK_DIR / "restore.sh"
ISVC = "inferenceservices.serving.kserve.io"

# State in files beside the tool: ns (the namespace's restored-from mark), iris.json (the object).
STATEFUL_KUBECTL = r"""#!/bin/bash
state="$(dirname "$0")/.."
echo "$*" >> "$state/calls"
mark='import json, sys; print(json.load(sys.stdin)["metadata"]["annotations"]["servekit.dev/restored-from"], end="")'
missing() { echo "Error from server (NotFound): $1 not found" >&2; exit 1; }
case "$*" in
  "config current-context") echo test ;;
  "version --request-timeout=10s") echo "Server Version: v1.34.0" ;;
  "get --raw /apis/serving.kserve.io/v1beta1")
    echo '{"resources":[{"name":"inferenceservices/status"},{"name":"inferenceservices"}]}' ;;
  "get namespace models -o jsonpath="*)
    [[ -f "$state/ns" ]] || missing 'namespaces "models"'
    printf 'Active %s' "$(cat "$state/ns")" ;;
  "create -f -") "$PYTHON" -c "$mark" > "$state/ns" ;;
  "annotate --overwrite namespace models servekit.dev/restored-from="*) printf '%s' "${5#*=}" > "$state/ns" ;;
  "-n models get inferenceservices.serving.kserve.io iris -o json")
    [[ -f "$state/iris.json" ]] || missing 'inferenceservices "iris"'
    cat "$state/iris.json" ;;
  "create -f "*) cp "$3" "$state/iris.json" ;;
  "-n models patch inferenceservices.serving.kserve.io iris --type=json --patch-file="*)
    cp "${7#--patch-file=}" "$state/patch.json" ;;
  *) echo "stand-in kubectl: unexpected: $*" >&2; exit 99 ;;
esac
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "state" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "kubectl").write_text(STATEFUL_KUBECTL)
    (bin_dir / "kubectl").chmod(0o755)
    return tmp_path / "state"


def restore(cluster: Path, *args: str) -> tuple[int, list[str], str]:
    env = {
        "PATH": f"{cluster / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "SERVEKIT_PYTHON": sys.executable,
        "PYTHON": sys.executable,
    }
    result = run_script(RESTORE, *args, env=env)
    return result.returncode, result.stdout.splitlines(), result.stderr


def test_a_restore_creates_then_finds_its_mark_then_patches_back_a_drift(tmp_path: Path, cluster: Path) -> None:
    backup = backups.one_isvc_backup(tmp_path)
    code, out, err = restore(cluster, str(backup))
    assert code == 0, err
    assert out[2:] == [
        "restore.sh: cluster: kubectl context 'test'",
        "restore.sh: the target serves every kind in the backup",
        "restore.sh: namespace models does not exist: it will be created",
        "restore.sh: created namespace models",
        "restore.sh: inferenceservices/iris: created",
        "restore.sh: restored backup models-20261126T093000Z into namespace models",
    ]
    assert (cluster / "ns").read_text() == "models-20261126T093000Z"
    created = json.loads((cluster / "iris.json").read_text())
    assert created["metadata"]["namespace"] == "models" and "uid" not in created["metadata"]

    code, out, err = restore(cluster, str(backup))
    assert code == 0, err
    assert "restore.sh: namespace models holds an earlier run of this restore: going on from there" in out
    assert "restore.sh: inferenceservices/iris: unchanged" in out

    created["spec"]["predictor"]["containers"][0]["image"] = "someone/else:2"
    (cluster / "iris.json").write_text(json.dumps(created))
    code, out, err = restore(cluster, str(backup))
    assert code == 0, err
    assert "restore.sh: inferenceservices/iris: patched to the backed-up content" in out
    patch = json.loads((cluster / "patch.json").read_text())
    backed_up = {"predictor": {"containers": [{"name": "kserve-container", "image": "servekit/predictor:0.1.0"}]}}
    assert patch == [{"op": "add", "path": "/spec", "value": backed_up}]


def test_a_cluster_without_the_crd_is_refused_with_what_to_install(tmp_path: Path, cluster: Path) -> None:
    text = (cluster / "bin" / "kubectl").read_text().replace('{"name":"inferenceservices"}', '{"name":"other"}')
    (cluster / "bin" / "kubectl").write_text(text)
    code, _, err = restore(cluster, str(backups.one_isvc_backup(tmp_path)))
    assert code == 1
    assert f"restore.sh: error: the target cluster does not serve {ISVC.split('.')[0]}.serving.kserve.io/v1beta1" in err
    assert "create" not in (cluster / "calls").read_text(), "nothing is written before the checks pass"
