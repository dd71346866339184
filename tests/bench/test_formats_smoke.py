"""The formats benchmark runs, bounded, checks each runtime against its framework, and reports it;
its MLServer peers' settings and report, without installing MLServer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost

from tests.bench import formats, formats_peers, mlserver_env


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


def test_mlserver_venv_pins_every_runtime_and_the_project_frameworks() -> None:
    pins = mlserver_env.requirements()
    for package, version, _, framework in mlserver_env.RUNTIMES.values():
        assert f"{package}=={version}" in pins
        assert any(p.startswith(f"{framework}==") for p in pins), (framework, pins)
    # the project's [xgboost] extra installs xgboost-cpu; MLServer's runtime needs the plain name, same version
    assert f"xgboost=={xgboost.__version__}" in pins
    assert mlserver_env.versions()["mlserver-lightgbm"] == mlserver_env.RUNTIMES["lightgbm"][1]


@pytest.mark.parametrize(
    ("kind", "implementation"),
    [("xgboost", "mlserver_xgboost.XGBoostModel"), ("lightgbm", "mlserver_lightgbm.LightGBMModel")],
)
def test_mlserver_model_settings_name_the_format_runtime(tmp_path: Path, kind: str, implementation: str) -> None:
    artifact = tmp_path / "model.file"
    artifact.write_text("x")
    root = mlserver_env.write_model_repository(tmp_path / "repo", "m", artifact, 8001, 8002, 8003, kind)
    model = json.loads((root / "m" / "model-settings.json").read_text())
    assert model["implementation"] == implementation
    assert model["parameters"]["uri"] == str(artifact.resolve())
    assert json.loads((root / "settings.json").read_text())["http_port"] == 8001


def test_mlserver_model_settings_refuse_a_format_without_runtime(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'onnx': none known"):
        mlserver_env.write_model_repository(tmp_path, "m", tmp_path / "a.onnx", 1, 2, 3, "onnx")


def test_peer_table_reports_ratio_and_unavailable_peers() -> None:
    ours = {"rps": 3000.0, "p50_ms": 2.0, "p99_ms": 9.0}
    results = {
        "onnx": {"served": ours},
        "xgboost": {"served": ours, "mlserver": {"rps": 1200.0, "p50_ms": 6.0, "p99_ms": 20.0}},
        "lightgbm": {"served": ours, "mlserver": {"status": "not installed", "reason": "pip failed; see log"}},
    }
    lines = formats_peers.peer_table(results).splitlines()
    assert lines[0].split() == ["format", "server", "req/s", "p50", "ms", "p99", "ms", "ours/MLServer"]
    assert lines[1].split() == ["xgboost", "servekit", "3000", "2.00", "9.00"]
    assert lines[2].split() == ["xgboost", "MLServer", "1200", "6.00", "20.00", "2.50"]
    assert lines[3].split()[:2] == ["lightgbm", "servekit"]
    assert lines[4].split(None, 2) == ["lightgbm", "MLServer", "not installed: pip failed; see log"]
    assert len(lines) == 5  # onnx has no MLServer runtime, so no row
    assert formats_peers.ratio(None, 10.0) is None
    assert formats_peers.peer_table({"onnx": {"served": ours}}) == ""


def test_peer_gets_the_same_threads_as_our_runtime() -> None:
    assert formats_peers.peer_env(1) == {"OMP_NUM_THREADS": "1"}
    assert formats_peers.peer_env(0) is None  # the framework's default, as ours


def test_mlserver_expected_follows_each_runtime_default_output() -> None:
    p = np.array([[0.25, 0.75]])
    assert formats_peers.mlserver_expected("xgboost", p).tolist() == [0.75]
    assert formats_peers.mlserver_expected("lightgbm", p).tolist() == [[0.25, 0.75]]
    with pytest.raises(ValueError, match="'onnx'"):
        formats_peers.mlserver_expected("onnx", p)


def test_peer_without_mlserver_installed_is_reported_not_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVEKIT_BENCH_CACHE", str(tmp_path / "empty-cache"))

    def never(port: int, path: str, body: Path) -> dict[str, Any]:
        raise AssertionError("no load without a server")

    peer = formats_peers.serve_peer(
        "xgboost",
        tmp_path / "m.ubj",
        "m",
        tmp_path / "b.json",
        np.zeros((1, 2)),
        tmp_path,
        never,
        False,
        tmp_path / "log",
    )
    assert peer["status"] == "not installed"
    assert "--no-mlserver-install" in peer["reason"]
