"""The formats benchmark runs, bounded, checks each runtime against its framework, and reports it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench import formats


def test_formats_benchmark_reports_each_format_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # tensorflow is left out: the test process has torch, which cannot share a process with it
    kinds = "sklearn,onnx,xgboost,lightgbm"
    argv = ["--kinds", kinds, "--calls", "3", "--rounds", "1", "--skip-served", "--threads", "1"]
    argv += ["--results-dir", str(tmp_path)]
    assert formats.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["format", "rows", "runtime"]
    assert [(line.split()[0], line.split()[1]) for line in lines[1:]] == [
        (kind, rows) for kind in ("sklearn", "onnx", "xgboost", "lightgbm") for rows in ("1", "32")
    ]
    (written,) = tmp_path.glob("bench-formats-*.json")
    results = json.loads(written.read_text())["results"]
    assert results["xgboost"]["in_process"]["rows_32"]["runtime_us"] > 0


def test_formats_benchmark_refuses_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert formats.main(["--kinds", "onnx,caffe"]) == 2
    assert "--kinds: unknown ['caffe']" in capsys.readouterr().err
    assert formats.main(["--calls", "0"]) == 2
