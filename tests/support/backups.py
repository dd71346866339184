"""Backups as hack/backup.sh writes them, made from kubectl answers without a cluster."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from predictor.backup import archive, export


def one_isvc_backup(folder: Path) -> Path:
    """A backup of namespace models (context prod) holding one InferenceService, iris, in FOLDER/backup."""
    raw = folder / "raw"
    raw.mkdir()
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "models", "uid": "u1"},
        "spec": {"predictor": {"containers": [{"name": "kserve-container", "image": "servekit/predictor:0.1.0"}]}},
    }
    answers = {
        "namespace.json": {"kind": "Namespace", "metadata": {"name": "models"}},
        "inferenceservices.json": {"apiVersion": "v1", "kind": "List", "items": [isvc]},
        "version.json": {"serverVersion": {"gitVersion": "v1.34.4"}, "clientVersion": {"gitVersion": "v1.32.4"}},
    }
    for name, answer in answers.items():
        (raw / name).write_text(json.dumps(answer))
    source = export.Source("models", "prod", "https://10.0.0.1:6443")
    files = export.build(raw, source, [], datetime(2026, 11, 26, 9, 30, tzinfo=UTC), lambda _: None, lambda _: None)
    archive.write(folder / "backup", files)
    return folder / "backup"
