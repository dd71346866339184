"""The layer-cost benchmark runs, bounded, and reports every stack."""

from __future__ import annotations

import pytest

from tests.bench import layers


def test_layers_benchmark_reports_each_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert layers.main(["--rounds", "1", "--requests", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0].strip() for line in lines] == [
        "no layers",
        "request id (made), body limit, versions",
        "request id (client's), body limit, versions",
        "... and bearer auth",
    ]
    assert all("us CPU/request" in line for line in lines)


def test_layers_benchmark_refuses_zero_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        layers.main(["--rounds", "0"])
    assert exited.value.code == 2
    assert "--rounds and --requests must be at least 1, got 0 and 5000" in capsys.readouterr().err
