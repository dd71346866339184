"""Helm's release records, read without Helm: the Secret's encoding, which revision counts, the chart's files.

The records here are written as Helm writes them (JSON, gzip, base64 twice: once by Helm, once by
the API); tests/cluster/test_backup.py reads ones the Helm SDK wrote on a real API server.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from predictor.backup.helm_release import (
    ReleaseError,
    chart_files,
    decode_secret,
    latest_releases,
)
from tests.support.rendering import CHART_DIR


def record(version: int, status: str, chart_version: str = "0.1.0", **extra: Any) -> dict[str, Any]:
    return {
        "name": "demo",
        "namespace": "models",
        "version": version,
        "info": {"status": status, "last_deployed": f"2026-11-2{version}T00:00:00Z", "description": status},
        "chart": {"metadata": {"name": "servekit", "version": chart_version, "appVersion": "0.1.0"}},
        "config": {"predictor": {"name": f"v{version}"}},
        "manifest": "---\nkind: InferenceService\n",
        **extra,
    }


def secret(release: dict[str, Any], gzipped: bool = True) -> dict[str, Any]:
    packed = json.dumps(release).encode()
    if gzipped:
        packed = gzip.compress(packed)
    stored = base64.b64encode(packed)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {"name": f"sh.helm.release.v1.demo.v{release['version']}"},
        "data": {"release": base64.b64encode(stored).decode()},
    }


@pytest.mark.parametrize("gzipped", [True, False], ids=["gzip", "plain"])
def test_a_release_secret_decodes_to_the_release(gzipped: bool) -> None:
    release = record(3, "deployed")
    assert decode_secret(secret(release, gzipped)) == release


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"type": "Opaque"}, "is of type 'Opaque', not helm.sh/release.v1"),
        ({"data": {"release": "%%%"}}, "data.release: not base64"),
        ({"data": {"release": base64.b64encode(b"H4sI!!").decode()}}, "release record: not base64"),
        (
            {"data": {"release": base64.b64encode(base64.b64encode(b"\x1f\x8b\x08junk")).decode()}},
            "the release record is not gzip'd JSON",
        ),
        (
            {"data": {"release": base64.b64encode(base64.b64encode(b'{"name": "x"}')).decode()}},
            "the release record has no chart",
        ),
    ],
    ids=["type", "outer-base64", "inner-base64", "gzip", "no-chart"],
)
def test_a_broken_release_secret_is_named_with_its_problem(broken: dict[str, Any], message: str) -> None:
    with pytest.raises(ReleaseError, match=message) as raised:
        decode_secret({**secret(record(1, "deployed")), **broken})
    assert "sh.helm.release.v1.demo.v1" in str(raised.value)


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "Demo", "x" * 54, ""])
def test_a_release_name_that_is_not_helms_is_refused(name: str) -> None:
    # The name becomes the backup's folder helm/<name>: a crafted Secret must not steer it.
    with pytest.raises(ReleaseError, match="is not a Helm release name"):
        decode_secret(secret(record(1, "deployed", name=name)))


def test_the_deployed_revision_is_kept_with_the_list_of_revisions() -> None:
    (release,) = latest_releases([record(3, "failed"), record(1, "superseded"), record(2, "deployed")])
    assert release.summary()["revision"] == 2
    assert release.values == {"predictor": {"name": "v2"}}
    assert [r["revision"] for r in release.summary()["history"]] == [1, 2, 3]
    assert release.summary()["history"][2] == {
        "revision": 3,
        "status": "failed",
        "chartVersion": "0.1.0",
        "updated": "2026-11-23T00:00:00Z",
        "description": "failed",
    }


def test_without_a_deployed_revision_the_newest_is_kept() -> None:
    (release,) = latest_releases([record(1, "failed"), record(2, "pending-upgrade")])
    assert release.summary()["revision"] == 2


def test_an_uninstalled_release_is_left_out() -> None:
    assert latest_releases([record(1, "superseded"), record(2, "uninstalled")]) == []


def test_subcharts_are_named_because_the_record_does_not_keep_them() -> None:
    (release,) = latest_releases([record(1, "deployed")])
    assert release.subcharts() == []
    release.chart["metadata"]["dependencies"] = [{"name": "redis", "version": "1.0.0"}]
    assert release.subcharts() == ["redis"]


def chart_as_helm_keeps_it(folder: Path) -> dict[str, Any]:
    """helm/servekit in the release record's shape: metadata, values, schema, templates, files."""

    def entry(path: Path) -> dict[str, str]:
        return {"name": str(path.relative_to(folder)), "data": base64.b64encode(path.read_bytes()).decode()}

    top = {"Chart.yaml", "values.yaml", "values.schema.json"}
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    return {
        "metadata": yaml.safe_load((folder / "Chart.yaml").read_text()),
        "values": yaml.safe_load((folder / "values.yaml").read_text()),
        "schema": base64.b64encode((folder / "values.schema.json").read_bytes()).decode(),
        "templates": [entry(p) for p in files if p.relative_to(folder).parts[0] == "templates"],
        "files": [entry(p) for p in files if p.relative_to(folder).parts[0] != "templates" and p.name not in top],
    }


def test_the_charts_files_come_back_and_render_as_the_original(tmp_path: Path) -> None:
    files = chart_files(chart_as_helm_keeps_it(CHART_DIR))
    for relative, content in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(content)
    assert files["templates/inferenceservice.yaml"] == (CHART_DIR / "templates/inferenceservice.yaml").read_bytes()
    assert "crds/canaryanalyses.servekit.dev.yaml" in files
    values = {
        "predictor": {"name": "v1"},
        "canaryAnalysis": {"enabled": True},
        "metrics": {"serviceMonitor": {"enabled": True}},
    }
    with helm_python.Chart.load(CHART_DIR) as original, helm_python.Chart.load(tmp_path) as restored:
        rendered = original.render(values, name="demo", namespace="models", is_install=True)
        assert restored.render(values, name="demo", namespace="models", is_install=True) == rendered


@pytest.mark.parametrize("path", ["../escape.yaml", "/etc/passwd", "templates/../../x"])
def test_a_chart_file_outside_the_chart_is_refused(path: str) -> None:
    chart = {"metadata": {"name": "c", "version": "1"}, "templates": [{"name": path, "data": ""}]}
    with pytest.raises(ReleaseError, match="is not a relative path inside the chart"):
        chart_files(chart)


def test_a_chart_without_metadata_is_refused() -> None:
    with pytest.raises(ReleaseError, match=r"no metadata \(Chart.yaml\)"):
        chart_files({"templates": []})
