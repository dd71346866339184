"""`servekit-canary release`'s command line: the settings it checks and the CanaryAnalysis it makes.
Its flow (start, analysis, verdicts, port-forwards) runs for real against stand-in tools in
tests/workflows/test_model_release.py, through hack/model-release.sh."""

from __future__ import annotations

import pytest

from predictor.canary import cli
from predictor.canary.commands.release_settings import Release, build_release_parser, release_from_args

BASE = ["--isvc", "iris", "--name", "v2", "--image", "r/p:2"]


def settings(*argv: str) -> Release:
    parser = build_release_parser()
    return release_from_args(parser.parse_args([*BASE, *argv]), parser)


def test_help_comes_through_servekit_canary(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["release", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("Usage: servekit-canary release --isvc NAME --name CANARY")
    for flag in ("--mode", "--prometheus-service", "--timeout", "--dry-run", "--max-p99-ms"):
        assert flag in text


def test_a_bad_value_is_named_with_the_form_expected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["release", *BASE, "--mode", "controller", "--threshold", "0"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "servekit-canary release: error: --threshold '0' is not a whole number of checks >= 1"
    assert err[1].startswith("Usage: servekit-canary release ")


def test_an_unknown_flag_is_an_unknown_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["release", *BASE, "--prometheus-url", "http://p", "--bogus"])
    assert exited.value.code == 2
    assert "error: unknown option: --bogus" in capsys.readouterr().err


def test_the_canary_analysis_has_typed_values_and_only_the_flags_given() -> None:
    release = settings("--mode", "controller", "--steps", "5,50", "--min-success-rate", "99.5", "--max-p99-ms", "250")
    assert release.canary_analysis() == {
        "apiVersion": "servekit.dev/v1alpha1",
        "kind": "CanaryAnalysis",
        "metadata": {"name": "iris", "namespace": "default"},
        "spec": {"inferenceService": "iris", "steps": [5, 50], "minSuccessRate": 99.5, "maxP99Ms": 250},
    }
    assert isinstance(release.canary_analysis()["spec"]["maxP99Ms"], int)


def test_run_gets_the_analysis_flags_as_given() -> None:
    release = settings("--prometheus-url", "http://p", "--interval", "1m30s", "--threshold", "3")
    assert release.analysis_flags() == ["--interval", "1m30s", "--threshold", "3"]
    assert release.timeout == 3600
