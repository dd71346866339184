"""A backup made from kubectl's answers, written, read back with every file checked, and what a
restore derives from it; the models' manifests read through a local store. No cluster:
tests/cluster/test_backup.py runs the scripts on one."""

from __future__ import annotations

import base64
import gzip
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from predictor.backup import archive, cli, export, models, objects, restore, restore_command
from predictor.backup.archive import ArchiveError
from predictor.backup.models import ModelError, ModelStore
from predictor.modeldir.spec import dump_spec, parse_spec

NOW = datetime(2026, 11, 26, 9, 30, 0, tzinfo=UTC)
SOURCE = export.Source("models", "prod", "https://10.0.0.1:6443")
SHA_V2 = "ab" * 32


def isvc(name: str, storage_uri: str | None = None, account: str | None = None, release: str | None = None) -> Any:
    container: dict[str, Any] = {"name": "kserve-container", "image": "servekit/predictor:0.1.0"}
    if storage_uri:
        container["env"] = [{"name": "STORAGE_URI", "value": storage_uri}]
    predictor: dict[str, Any] = {"name": "v2", "containers": [container]}
    if account:
        predictor["serviceAccountName"] = account
    metadata: dict[str, Any] = {"name": name, "namespace": "models", "uid": "u1", "resourceVersion": "7"}
    if release:
        metadata["annotations"] = {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": "models"}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def helm_secret(name: str, version: int, status: str, crd: str | None = None) -> Any:
    files = [{"name": "crds/analyses.yaml", "data": base64.b64encode(crd.encode()).decode()}] if crd else []
    release = {
        "name": name,
        "namespace": "models",
        "version": version,
        "info": {"status": status, "last_deployed": "2026-11-26T09:00:00Z"},
        "chart": {
            "metadata": {"apiVersion": "v2", "name": "servekit", "version": "0.1.0"},
            "values": {"replicas": 1},
            "templates": [{"name": "templates/cm.yaml", "data": base64.b64encode(b"kind: ConfigMap\n").decode()}],
            "files": files,
        },
        "config": {"predictor": {"name": "v2"}, "auth": {"token": {"value": "s3cret"}}},
        "manifest": "---\nkind: ConfigMap\n",
    }
    stored = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    return {
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {"name": f"sh.helm.release.v1.{name}.v{version}"},
        "data": {"release": base64.b64encode(stored).decode()},
    }


ANALYSIS_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  group: servekit.dev
  names: {plural: canaryanalyses, kind: CanaryAnalysis}
  versions: [{name: v1alpha1, served: true}]
"""


def kubectl_list(items: list[Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items}


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    """kubectl's answers for a namespace with a chart release and an overlay's InferenceService."""
    folder = tmp_path / "raw"
    folder.mkdir()
    answers = {
        "namespace.json": {
            "kind": "Namespace",
            "metadata": {
                "name": "models",
                "labels": {"kubernetes.io/metadata.name": "models", "pod-security.kubernetes.io/enforce": "restricted"},
            },
        },
        "inferenceservices.json": kubectl_list(
            [
                isvc("iris", account="iris-predictor"),
                isvc("demo-servekit", "s3://models/iris/v2", account="demo-servekit", release="demo"),
            ]
        ),
        "canaryanalyses.json": kubectl_list(
            [
                {
                    "apiVersion": "servekit.dev/v1alpha1",
                    "kind": "CanaryAnalysis",
                    "metadata": {"name": "demo-servekit", "uid": "u2"},
                    "spec": {"inferenceService": "demo-servekit"},
                    "status": {"phase": "Succeeded"},
                }
            ]
        ),
        "configmaps.json": kubectl_list(
            [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "demo-servekit-canary-history"},
                    "data": {"history.json": '[\n {"revision": 1}\n]'},
                }
            ]
        ),
        "serviceaccounts.json": kubectl_list(
            [
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
                for name in ("default", "demo-servekit", "iris-predictor", "unrelated")
            ]
        ),
        "secrets.json": kubectl_list(
            [helm_secret("demo", 1, "superseded"), helm_secret("demo", 2, "deployed", ANALYSIS_CRD)]
        ),
        "version.json": {"serverVersion": {"gitVersion": "v1.34.4"}, "clientVersion": {"gitVersion": "v1.32.4"}},
    }
    for name, answer in answers.items():
        (folder / name).write_text(json.dumps(answer))
    return folder


@pytest.fixture
def store(tmp_path: Path, manifest: dict[str, Any]) -> ModelStore:
    """A local copy of s3://models holding iris/v2/model.yaml."""
    root = tmp_path / "store"
    (root / "iris" / "v2").mkdir(parents=True)
    manifest["artifact"]["sha256"] = SHA_V2
    dump_spec(parse_spec(manifest), root / "iris" / "v2")
    return ModelStore.parse(f"s3://models={root}")


Messages = list[str]


@pytest.fixture
def made(raw: Path, store: ModelStore, tmp_path: Path) -> tuple[Path, Messages, Messages]:
    said: Messages = []
    warned: Messages = []
    files = export.build(raw, SOURCE, [store], NOW, said.append, warned.append)
    archive.write(tmp_path / "backup", files)
    return tmp_path / "backup", said, warned


def read(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_the_index_says_what_when_from_where_and_which_versions(made: tuple[Path, Messages, Messages]) -> None:
    folder, _, _ = made
    index = read(folder / "index.yaml")
    assert {key: index[key] for key in ("apiVersion", "kind", "format", "id", "created")} == {
        "apiVersion": "servekit.dev/v1alpha1",
        "kind": "Backup",
        "format": 1,
        "id": "models-20261126T093000Z",
        "created": "2026-11-26T09:30:00Z",
    }
    assert index["source"] == {
        "context": "prod",
        "server": "https://10.0.0.1:6443",
        "namespace": "models",
        "namespaceLabels": {"pod-security.kubernetes.io/enforce": "restricted"},
    }
    assert index["versions"] == {"kubernetes": "v1.34.4", "kubectl": "v1.32.4", "servekit": "0.1.0"}
    assert [(o["kind"], o["name"], o["file"]) for o in index["objects"]] == [
        ("InferenceService", "demo-servekit", "inferenceservices/demo-servekit.yaml"),
        ("InferenceService", "iris", "inferenceservices/iris.yaml"),
        ("CanaryAnalysis", "demo-servekit", "canaryanalyses/demo-servekit.yaml"),
        ("ConfigMap", "demo-servekit-canary-history", "canary-history/demo-servekit-canary-history.yaml"),
        ("ServiceAccount", "iris-predictor", "serviceaccounts/iris-predictor.yaml"),
    ]
    assert index["helmReleases"] == [
        {
            "name": "demo",
            "revision": 2,
            "status": "deployed",
            "chart": "servekit",
            "chartVersion": "0.1.0",
            "dir": "helm/demo",
        }
    ]
    assert index["models"] == 1


def test_objects_are_written_as_a_user_would_write_them(made: tuple[Path, Messages, Messages]) -> None:
    folder, said, warned = made
    assert read(folder / "inferenceservices/iris.yaml") == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris"},
        "spec": isvc("iris", account="iris-predictor")["spec"],
    }
    assert read(folder / "canaryanalyses/demo-servekit.yaml")["spec"] == {"inferenceService": "demo-servekit"}
    # The history's JSON stays readable: a YAML block, line by line.
    assert "history.json: |-\n    [\n" in (folder / "canary-history/demo-servekit-canary-history.yaml").read_text()
    assert "InferenceService iris -> inferenceservices/iris.yaml" in said
    assert warned == []


def test_only_the_accounts_of_inferenceservices_outside_helm_are_kept(made: tuple[Path, Messages, Messages]) -> None:
    folder, _, _ = made
    assert sorted(p.name for p in (folder / "serviceaccounts").iterdir()) == ["iris-predictor.yaml"]


def test_a_helm_release_keeps_its_deployed_values_chart_and_revisions(made: tuple[Path, Messages, Messages]) -> None:
    folder, _, _ = made
    release = folder / "helm" / "demo"
    assert read(release / "values.yaml") == {"predictor": {"name": "v2"}, "auth": {"token": {"value": "s3cret"}}}
    summary = read(release / "release.yaml")
    assert (summary["revision"], summary["status"], summary["chart"]["version"]) == (2, "deployed", "0.1.0")
    assert [r["revision"] for r in summary["history"]] == [1, 2]
    assert (release / "manifest.yaml").read_text() == "---\nkind: ConfigMap\n"
    assert read(release / "chart" / "Chart.yaml") == {"apiVersion": "v2", "name": "servekit", "version": "0.1.0"}
    assert (release / "chart" / "templates" / "cm.yaml").read_text() == "kind: ConfigMap\n"


def test_models_carry_the_sha256_of_their_manifest(made: tuple[Path, Messages, Messages], store: ModelStore) -> None:
    folder, said, _ = made
    assert read(folder / "models.yaml") == [
        {
            "inferenceService": "demo-servekit",
            "predictor": "v2",
            "role": "stable",
            "uri": "s3://models/iris/v2",
            "sha256": SHA_V2,
            "artifact": "model.joblib",
            "model": "iris",
            "version": "1",
            "framework": "sklearn",
            "manifest": str(store.root.resolve() / "iris" / "v2" / "model.yaml"),
        }
    ]
    assert f"model s3://models/iris/v2 (demo-servekit, stable): {SHA_V2}" in said


def test_kinds_the_cluster_does_not_serve_and_broken_release_records_are_warned_about(raw: Path) -> None:
    (raw / "canaryanalyses.json").unlink()
    secrets = json.loads((raw / "secrets.json").read_text())
    secrets["items"][0]["data"]["release"] = "%%%"
    (raw / "secrets.json").write_text(json.dumps(secrets))
    warned: Messages = []
    files = export.build(raw, SOURCE, [], NOW, lambda _: None, warned.append)
    assert warned == [
        "no CanaryAnalysis objects: the cluster has no canaryanalyses.servekit.dev (CRD not installed)",
        "skipping a Helm release record: Secret sh.helm.release.v1.demo.v1 data.release: not base64 "
        "(Only base64 data is allowed)",
    ]
    assert "canaryanalyses/demo-servekit.yaml" not in files
    assert read_models(files) == [
        {
            "inferenceService": "demo-servekit",
            "predictor": "v2",
            "role": "stable",
            "uri": "s3://models/iris/v2",
            "sha256": None,
        }
    ]


def read_models(files: dict[str, bytes]) -> Any:
    return yaml.safe_load(files["models.yaml"])


def test_a_backup_reads_back_whole(made: tuple[Path, Messages, Messages]) -> None:
    folder, _, _ = made
    backup = archive.load(folder)
    assert backup.id == "models-20261126T093000Z"
    assert [o["metadata"]["name"] for o in backup.objects][:2] == ["demo-servekit", "iris"]
    assert [r["name"] for r in backup.releases] == ["demo"]
    assert backup.models[0]["sha256"] == SHA_V2


def test_a_backup_is_never_written_over(made: tuple[Path, Messages, Messages]) -> None:
    folder, _, _ = made
    with pytest.raises(ArchiveError, match="already exists and is not an empty directory"):
        archive.write(folder, {"index.yaml": b""})


Breakage = Callable[[Path], None]


def edit_yaml(relative: str, change: Callable[[Any], Any]) -> Breakage:
    def breaking(folder: Path) -> None:
        path = folder / relative
        path.write_text(yaml.safe_dump(change(yaml.safe_load(path.read_text()))))

    return breaking


BROKEN: dict[str, tuple[Breakage, str]] = {
    "no index": (lambda f: (f / "index.yaml").unlink(), "the backup index: index.yaml is missing from the backup"),
    "index not YAML": (lambda f: (f / "index.yaml").write_text("id: [unclosed"), "index.yaml is not valid YAML"),
    "another kind": (edit_yaml("index.yaml", lambda i: {**i, "kind": "Other"}), "is not a servekit backup index"),
    "newer format": (
        edit_yaml("index.yaml", lambda i: {**i, "format": 2}),
        "backup format 2; this servekit reads format 1",
    ),
    "object missing": (
        lambda f: (f / "inferenceservices/iris.yaml").unlink(),
        "InferenceService iris: inferenceservices/iris.yaml is missing",
    ),
    "object renamed": (
        edit_yaml("inferenceservices/iris.yaml", lambda o: {**o, "metadata": {"name": "other"}}),
        "holds InferenceService other, the index says InferenceService iris",
    ),
    "file outside": (
        edit_yaml("index.yaml", lambda i: {**i, "objects": [{**i["objects"][0], "file": "../../etc/passwd"}]}),
        "names '../../etc/passwd', which is outside the backup folder",
    ),
    "values not a map": (
        lambda f: (f / "helm/demo/values.yaml").write_text("- a\n"),
        "helm/demo/values.yaml is not a mapping",
    ),
    "chart missing": (
        lambda f: (f / "helm/demo/chart/Chart.yaml").unlink(),
        "Helm release demo: helm/demo/chart/Chart.yaml is missing",
    ),
    "models not a list": (lambda f: (f / "models.yaml").write_text("a: 1\n"), "models.yaml is not a list of models"),
}


@pytest.mark.parametrize(("breaking", "message"), BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_backup_is_refused_naming_the_file(
    made: tuple[Path, Messages, Messages], breaking: Breakage, message: str
) -> None:
    folder, _, _ = made
    breaking(folder)
    with pytest.raises(ArchiveError, match=message.replace("(", r"\(").replace(")", r"\)")):
        archive.load(folder)


def test_a_restore_writes_accounts_first_and_the_analysis_last_in_the_target(
    made: tuple[Path, Messages, Messages],
) -> None:
    folder, _, _ = made
    ordered = restore.objects_in_order(archive.load(folder), "restored")
    assert [(o["kind"], o["metadata"]["name"]) for o in ordered] == [
        ("ServiceAccount", "iris-predictor"),
        ("InferenceService", "demo-servekit"),
        ("InferenceService", "iris"),
        ("ConfigMap", "demo-servekit-canary-history"),
        ("CanaryAnalysis", "demo-servekit"),
    ]
    assert {o["metadata"]["namespace"] for o in ordered} == {"restored"}
    assert ordered[1]["metadata"]["annotations"]["meta.helm.sh/release-namespace"] == "restored"


def test_the_target_namespace_gets_the_source_labels_and_the_restore_mark(
    made: tuple[Path, Messages, Messages],
) -> None:
    folder, _, _ = made
    assert restore.namespace_manifest(archive.load(folder), "restored") == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "restored",
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            "annotations": {"servekit.dev/restored-from": "models-20261126T093000Z"},
        },
    }


def test_the_target_must_serve_the_custom_resources_a_chart_does_not_bring(
    made: tuple[Path, Messages, Messages],
) -> None:
    folder, _, _ = made
    # The release's chart installs the CanaryAnalysis CRD (crds/); KServe's must be there.
    assert restore.required_apis(archive.load(folder)) == [("serving.kserve.io/v1beta1", "inferenceservices")]
    (folder / "helm/demo/chart/crds/analyses.yaml").unlink()
    assert restore.required_apis(archive.load(folder)) == [
        ("servekit.dev/v1alpha1", "canaryanalyses"),
        ("serving.kserve.io/v1beta1", "inferenceservices"),
    ]


# --- models ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/mnt/models", "expected URI_PREFIX=DIR"),
        ("models=/tmp", "expected URI_PREFIX=DIR"),
        ("s3://models=", "expected URI_PREFIX=DIR"),
        ("s3://models=/no/such/folder", "/no/such/folder is not a directory"),
    ],
)
def test_a_bad_model_store_is_named(text: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        ModelStore.parse(text)


def test_the_longest_prefix_wins_and_only_whole_path_segments_match(tmp_path: Path) -> None:
    bucket = ModelStore.parse(f"s3://models={tmp_path}")
    nested = ModelStore.parse(f"s3://models/iris/={tmp_path}")
    assert models.store_for([bucket, nested], "s3://models/iris/v2") is nested
    assert models.store_for([bucket, nested], "s3://models/digits/1") is bucket
    assert models.store_for([bucket, nested], "s3://models-old/iris") is None


def test_a_uri_naming_the_artifact_reads_the_manifest_beside_it(store: ModelStore) -> None:
    (store.root / "iris" / "v2" / "model.joblib").write_bytes(b"")
    assert models.read_manifest([store], "s3://models/iris/v2/model.joblib")["sha256"] == SHA_V2


def test_a_uri_leading_out_of_the_store_is_refused(store: ModelStore) -> None:
    with pytest.raises(ModelError, match="leads outside --model-store"):
        models.read_manifest([store], "s3://models/../../etc")


def test_a_missing_manifest_in_a_store_is_an_error_naming_the_uri(store: ModelStore) -> None:
    with pytest.raises(
        ModelError, match=r"model s3://models/iris/v9 \(through --model-store s3://models=.*no model.yaml"
    ):
        models.read_manifest([store], "s3://models/iris/v9")


def test_every_place_kserve_takes_a_model_from_is_read() -> None:
    service = {
        "metadata": {"name": "iris"},
        "spec": {
            "predictor": {"name": "v1", "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://m/iris/1"}},
            "canary": [
                {"predictor": {"name": "v2", "sklearn": {"storageUri": "gs://m/iris/2"}}},
                {"predictor": {"name": "v3", "containers": [{"image": "other"}]}},
            ],
        },
    }
    assert models.served_models(service) == [
        {"inferenceService": "iris", "predictor": "v1", "role": "stable", "uri": "gs://m/iris/1"},
        {"inferenceService": "iris", "predictor": "v2", "role": "canary", "uri": "gs://m/iris/2"},
    ]


def test_a_model_that_changed_in_the_store_is_reported(store: ModelStore) -> None:
    recorded = [
        {"uri": "s3://models/iris/v2", "sha256": SHA_V2},
        {"uri": "gs://elsewhere/x", "sha256": SHA_V2},  # no store covers it: not checked
    ]
    assert models.compare(recorded, [store]) == (1, [])
    recorded[0]["sha256"] = "cd" * 32
    assert models.compare(recorded, [store]) == (
        1,
        [f"s3://models/iris/v2: backed up with sha256 {'cd' * 32}, the store now has {SHA_V2}"],
    )


# --- the command line the scripts call ------------------------------------------------------------


def test_a_restore_needs_the_backups_apis_and_writes_its_objects_in_order(
    made: tuple[Path, Messages, Messages],
) -> None:
    folder, _, _ = made
    backup = archive.load(folder)
    assert (backup.id, backup.source["namespace"]) == ("models-20261126T093000Z", "models")
    assert restore.required_apis(backup) == [("serving.kserve.io/v1beta1", "inferenceservices")]
    first = restore.objects_in_order(backup, "restored")[0]
    assert (first["kind"], first["metadata"]) == ("ServiceAccount", {"name": "iris-predictor", "namespace": "restored"})


def test_a_bad_backup_exits_1_with_the_problem_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--prog", "restore.sh", "verify", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(
        "restore.sh: error: the backup index: index.yaml is missing from the backup"
    )


def test_check_models_fails_on_a_changed_model(
    made: tuple[Path, Messages, Messages], store: ModelStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, _ = made
    args = restore_command.RestoreArgs(backup=str(folder), model_stores=[f"{store.prefix}={store.root}"])
    run = restore_command.Restore(args, "restore.sh", tmp_path)
    run.check_models(archive.load(folder))
    assert "restore.sh: models: 1 of 1 in the model store, each with the backed-up sha256" in capsys.readouterr().out
    manifest = store.root / "iris" / "v2" / "model.yaml"
    manifest.write_text(manifest.read_text().replace(SHA_V2, "cd" * 32))
    with pytest.raises(ModelError, match="the model store holds other models than the backup recorded"):
        run.check_models(archive.load(folder))


def test_a_drifted_object_is_patched_back_to_its_spec(made: tuple[Path, Messages, Messages]) -> None:
    folder, _, _ = made
    wanted = restore.objects_in_order(archive.load(folder), "models")[2]  # iris
    live = {**wanted, "status": {}, "spec": {"predictor": {"name": "old"}}}
    assert objects.patch_ops(wanted, live) == [{"op": "add", "path": "/spec", "value": wanted["spec"]}]


def test_a_backup_with_helm_releases_needs_the_helm_sdk_before_anything_is_written(
    made: tuple[Path, Messages, Messages], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _, _ = made
    monkeypatch.setitem(sys.modules, "helm_python", None)  # as if helm-python-sdk were not installed
    assert cli.main(["--prog", "restore.sh", "verify", str(folder)]) == 1
    assert "restore.sh: error: restoring Helm releases needs helm-python-sdk" in capsys.readouterr().err


def test_nothing_is_written_outside_the_backup_folder(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="outside the backup folder"):
        archive.write(tmp_path / "backup", {"index.yaml": b"", "helm/../../escaped/values.yaml": b"x"})
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "backup").exists(), "nothing written at all"
