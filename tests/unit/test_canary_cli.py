"""``servekit-canary``: arguments, help, output formats, dry runs and exit codes.

The commands run on the in-memory edges (tests/unit/canary_edges.py) through ``main``'s own error
handling; tests/integration/test_canary_kmock.py runs the same CLI as a process against an HTTP
Kubernetes API mock, and the cluster tests run it against the real control plane.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from predictor.canary import cli, display, isvc
from predictor.canary.isvc import CanaryView, Mode
from predictor.canary.state import Phase, RolloutState
from tests.support.canary_edges import MemoryEdges, standard_isvc, standard_status

COMMANDS = ["status", "start", "set-weight", "promote", "rollback", "abort", "history", "restore", "run", "controller"]
GOOD = {"code=~": 0.0, "servekit_requests_total": 500.0, "servekit_request_duration_seconds": 0.02}


@pytest.fixture
def memory() -> MemoryEdges:
    edges = MemoryEdges()
    edges.isvcs.add(standard_isvc("iris"))
    return edges


def run_cli(memory: MemoryEdges, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main([*argv], out=out, make_edges=lambda args, url: memory.edges())
    return code, out.getvalue()


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help(command: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"] if command else ["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: servekit-canary")
    if command and command != "controller":
        assert "ISVC" in text and "--namespace" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["launch", "iris"], "invalid choice: 'launch'"),
        (["set-weight", "iris", "120"], "weight 120 is not from 0 to 100"),
        (["set-weight", "iris", "ten"], "weight 'ten' is not an integer"),
        (["start", "iris"], "the following arguments are required: --name"),
        (["run", "iris"], "the following arguments are required: --prometheus-url"),
        (["run", "iris", "--prometheus-url", "http://p", "--steps", "50,10"], "must rise strictly"),
        (["run", "iris", "--prometheus-url", "http://p", "--steps", "a,b"], "expected comma-separated weights"),
        (["run", "iris", "--prometheus-url", "http://p", "--interval", "soon"], "duration 'soon'"),
        (["run", "iris", "--prometheus-url", "http://p", "--webhook", "later=http://x"], "webhooks.0.type"),
        (["status", "iris", "-o", "yaml"], "invalid choice: 'yaml'"),
        (["restore", "iris", "one"], "invalid int value: 'one'"),
    ],
)
def test_usage_errors_exit_2_with_the_reason(
    memory: MemoryEdges, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(memory, *argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_api_errors_exit_2_with_one_line(memory: MemoryEdges, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(memory, "status", "nope", "-n", "models")[0] == 2
    assert capsys.readouterr().err == "servekit-canary: error: InferenceService models/nope not found\n"


def test_spec_errors_exit_2(memory: MemoryEdges, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(memory, "start", "iris", "-n", "models", "--name", "v1", "--image", "x")[0] == 2
    assert "must differ from spec.predictor.name" in capsys.readouterr().err


def test_status_text_and_json(memory: MemoryEdges) -> None:
    code, text = run_cli(memory, "status", "iris", "-n", "models")
    assert code == 0
    assert text.splitlines() == ["InferenceService models/iris (Standard mode)", "  stable: v1", "  canary: none"]
    _, out = run_cli(memory, "status", "iris", "-n", "models", "-o", "json")
    assert json.loads(out) == {
        "namespace": "models", "name": "iris", "mode": "Standard", "stable": "v1", "canary": None, "weight": 0,
        "ready": None, "checksum": "", "restoring": False, "rollout": None,
    }  # fmt: skip


def test_dry_run_prints_the_diff_and_writes_nothing(memory: MemoryEdges) -> None:
    code, diff = run_cli(
        memory, "start", "iris", "-n", "models", "--name", "v2", "--storage-uri", "s3://m/v2", "--dry-run"
    )
    assert code == 0
    assert diff.startswith("--- iris (now)\n+++ iris (after)\n")
    assert "+  canary:\n" in diff and "+      name: v2\n" in diff and "+        - name: STORAGE_URI\n" in diff
    assert memory.isvcs.writes == 0 and memory.history.read("models", "iris") == []
    _, as_json = run_cli(
        memory, "start", "iris", "-n", "models", "--name", "v2", "--image", "x:2", "--dry-run", "-o", "json"
    )
    assert json.loads(as_json)["spec"]["canary"][0]["predictor"]["containers"][0]["image"] == "x:2"


@pytest.mark.parametrize("command", ["promote", "rollback", "abort", "set-weight"])
def test_every_change_has_a_dry_run(memory: MemoryEdges, command: str) -> None:
    run_cli(memory, "start", "iris", "-n", "models", "--name", "v2", "--image", "x:2", "--weight", "10")
    writes = memory.isvcs.writes
    extra = ["30"] if command == "set-weight" else []
    code, diff = run_cli(memory, command, "iris", *extra, "-n", "models", "--dry-run")
    assert code == 0 and diff.startswith("--- iris (now)") and memory.isvcs.writes == writes


def test_manual_rollout_and_its_history(memory: MemoryEdges) -> None:
    ns = ["-n", "models"]
    assert run_cli(memory, "start", "iris", *ns, "--name", "v2", "--storage-uri", "s3://m/v2", "--weight", "10")[0] == 0
    code, out = run_cli(memory, "set-weight", "iris", "40", *ns, "-o", "json")
    assert code == 0 and json.loads(out)["weight"] == 40 and json.loads(out)["canary"] == "v2"
    writes = memory.isvcs.writes
    code, out = run_cli(memory, "set-weight", "iris", "40", *ns, "-o", "json")
    assert code == 0 and json.loads(out)["changed"] is False
    assert memory.isvcs.writes == writes, "the same weight again writes nothing and records nothing"
    assert run_cli(memory, "promote", "iris", *ns)[1].startswith("promote: done")
    assert memory.isvcs.get("models", "iris")["spec"]["predictor"]["name"] == "v2"
    code, again = run_cli(memory, "promote", "iris", *ns)
    assert code == 0 and again == "nothing to do: InferenceService 'iris' has no canary to promote\n"

    _, out = run_cli(memory, "history", "iris", *ns, "-o", "json")
    entries = json.loads(out)
    assert [e["action"] for e in entries] == ["baseline", "start", "set-weight", "promote"]
    assert [e["revision"] for e in entries] == [1, 2, 3, 4]
    assert all(isinstance(e["time"], str) and "predictor" in e and "canary" in e for e in entries)
    assert entries[2]["canary"][0]["trafficPercent"] == 40 and entries[3]["canary"] is None
    text = run_cli(memory, "history", "iris", *ns)[1]
    assert text.splitlines()[0].split() == ["REV", "TIME", "ACTION", "SPECS"]
    assert "canary v2 at 40%" in text

    assert run_cli(memory, "restore", "iris", "1", *ns)[0] == 0
    assert memory.isvcs.get("models", "iris")["spec"]["predictor"]["name"] == "v1"
    assert run_cli(memory, "restore", "iris", "99", *ns)[0] == 2


def test_rollback_and_its_alias(memory: MemoryEdges) -> None:
    for command in ("rollback", "abort"):
        run_cli(memory, "start", "iris", "-n", "models", "--name", "v2", "--image", "x:2")
        code, out = run_cli(memory, command, "iris", "-n", "models", "-o", "json")
        assert code == 0 and json.loads(out)["action"] == "rollback" and json.loads(out)["canary"] is None


def start_ready_canary(memory: MemoryEdges) -> None:
    run_cli(memory, "start", "iris", "-n", "models", "--name", "v2", "--image", "x:2")
    memory.isvcs.set_status("models", "iris", standard_status("v2", ready=True))


RUN = ["run", "iris", "-n", "models", "--prometheus-url", "http://prometheus.test", "--interval", "10s", "--poll", "5"]


def test_run_exits_0_when_promoted(memory: MemoryEdges) -> None:
    start_ready_canary(memory)
    memory.metrics.answers = dict(GOOD)
    code, out = run_cli(memory, *RUN, "--steps", "20,50")
    assert code == 0
    lines = out.splitlines()
    assert lines[-1].startswith("models/iris Succeeded canary=v2 weight=50%")
    assert any("Progressing canary=v2 weight=20%" in line for line in lines), "plain lines when not a TTY"
    state = memory.history.read_rollout("models", "iris")
    assert state is not None and state["phase"] == "Succeeded", "the state is kept beside the history"
    annotations = memory.isvcs.get("models", "iris")["metadata"]["annotations"]
    assert list(annotations) == ["serving.kserve.io/deploymentMode"], "KServe copies annotations into the pods"


def test_run_exits_1_when_rolled_back_and_prints_json(memory: MemoryEdges) -> None:
    start_ready_canary(memory)
    code, out = run_cli(memory, *RUN, "--threshold", "2", "-o", "json")
    assert code == 1
    final = json.loads(out)
    assert final["phase"] == "Failed" and final["failed_checks"] == 2 and "no data" in final["message"]


def test_run_without_a_canary_is_a_usage_error(memory: MemoryEdges, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(memory, *RUN)
    assert exited.value.code == 2
    assert "has no canary: `servekit-canary start` one first" in capsys.readouterr().err


def test_analysis_file_with_flags_on_top(tmp_path: Path) -> None:
    path = tmp_path / "analysis.yaml"
    path.write_text(
        "inferenceService: iris\nstepWeight: 10\nmaxWeight: 30\nthreshold: 3\n"
        "metrics:\n  - {name: budget, query: 'sum(x{$selector})', max: 1}\n"
    )
    args = cli.build_parser().parse_args(["run", "iris", "--prometheus-url", "http://p", "--analysis", str(path)])
    spec = cli.analysis_spec(args)
    assert (spec.weights(), spec.threshold, spec.metrics[0].name) == ([10, 20, 30], 3, "budget")
    args = cli.build_parser().parse_args(
        ["run", "iris", "--prometheus-url", "http://p", "--analysis", str(path), "--threshold", "7", "--compare-stable",
         "--manual-gate", "20", "--webhook", "confirm-promotion=http://gate.test/ok"]
    )  # fmt: skip
    spec = cli.analysis_spec(args)
    assert (spec.threshold, spec.manual_gates, spec.compare_stable is not None) == (7, [20], True)
    assert spec.webhooks[0].type == "confirm-promotion" and spec.webhooks[0].url == "http://gate.test/ok"


def test_a_flag_replaces_the_files_camel_case_field(tmp_path: Path) -> None:
    path = tmp_path / "analysis.yaml"
    path.write_text("stepWeight: 10\nmaxWeight: 30\nminSuccessRate: 90\nmanualGates: [20]\nmaxP99Ms: 800\n")
    args = cli.build_parser().parse_args(
        ["run", "iris", "--prometheus-url", "http://p", "--analysis", str(path), "--min-success-rate", "99.5",
         "--steps", "10,25", "--manual-gate", "25"]
    )  # fmt: skip
    spec = cli.analysis_spec(args)
    assert (spec.min_success_rate, spec.weights(), spec.manual_gates) == (99.5, [10, 25], [25])
    assert spec.max_p99_ms == 800, "the file's fields without a flag stay"


def test_bad_analysis_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "analysis.yaml"
    path.write_text("- not a mapping\n")
    with pytest.raises(SystemExit):
        cli.main(["run", "iris", "--prometheus-url", "http://p", "--analysis", str(path)])
    assert f"--analysis {path}: expected a mapping" in capsys.readouterr().err


# --- the live view and plain lines -------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def sample() -> tuple[CanaryView, RolloutState]:
    view = CanaryView("models", "iris", Mode.STANDARD, True, "v2", "v1", 25, "c", True, "p")
    last = {
        "passed": False,
        "checks": [{"name": "request-success-rate", "passed": False, "value": 90.0, "detail": "90%"}],
    }
    state = RolloutState(Phase.PROGRESSING, "v2", "c", 25, 1, failed_checks=1, iterations=2, last_analysis=last)
    return view, state


def test_a_terminal_gets_the_rich_live_view() -> None:
    stream = Terminal()
    shown = display.for_stream(stream)
    assert isinstance(shown, display.LiveDisplay)
    shown.update(*sample())
    shown.close()
    text = stream.getvalue()
    assert "\x1b[" in text, "ANSI styling"
    assert "canary rollout of models/iris" in text and "request-success-rate" in text and "Progressing" in text


def test_a_pipe_gets_one_plain_line_per_change() -> None:
    stream = io.StringIO()
    shown = display.for_stream(stream)
    assert isinstance(shown, display.PlainDisplay)
    view, state = sample()
    shown.update(view, state)
    shown.update(view, state)
    assert stream.getvalue() == ("models/iris Progressing canary=v2 weight=25% failed_checks=1 iterations=2: \n"), (
        "no ANSI codes, no repeats"
    )


def test_run_shows_plain_lines_on_stderr_with_json_output(
    memory: MemoryEdges, capsys: pytest.CaptureFixture[str]
) -> None:
    start_ready_canary(memory)
    memory.metrics.answers = dict(GOOD)
    code, out = run_cli(memory, *RUN, "--steps", "50", "-o", "json")
    assert code == 0 and json.loads(out)["phase"] == "Succeeded"
    assert "Succeeded canary=v2" in capsys.readouterr().err


def test_knative_status_names_revisions(memory: MemoryEdges) -> None:
    obj: dict[str, Any] = standard_isvc("kn")
    obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Knative"
    del obj["spec"]["predictor"]["name"]
    memory.isvcs.add(isvc.start(obj, "v2", image="x:2", weight=10))
    code, out = run_cli(memory, "status", "kn", "-n", "models", "-o", "json")
    assert code == 0 and json.loads(out)["mode"] == "Knative" and json.loads(out)["weight"] == 10


# --- the docs say what the code does ------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "canary.md"


def test_docs_show_the_queries_as_the_code_has_them() -> None:
    from predictor.canary import queries

    text = DOCS.read_text()
    for template in (
        queries.REQUESTS,
        queries.ERRORS,
        queries.P99_SECONDS,
        queries.STANDARD_SELECTOR,
        queries.KNATIVE_SELECTOR,
    ):
        assert template in text, f"docs/canary.md lacks the query {template}"


def test_docs_name_every_command_and_run_flag() -> None:
    import argparse

    text = DOCS.read_text()
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        assert re.search(rf"\b{re.escape(name)}\b", text), f"docs/canary.md never names the command {name}"
        if name == "run":
            flags = {o for action in sub._actions for o in action.option_strings if o.startswith("--")}
            missing = sorted(
                f
                for f in flags - {"--help", "--namespace", "--kubeconfig", "--context", "--output"}
                if f"`{f}" not in text
            )
            assert not missing, f"docs/canary.md does not document {missing}"
