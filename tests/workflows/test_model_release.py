"""hack/model-release.sh, the script model-release.yml runs, run for real: against stand-ins for
servekit-canary and kubectl (tests/workflows/canary_cluster_standin.py) for its flow and verdicts,
with --dry-run for the commands it builds, and the workflow step itself with its inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.harness import run_script
from tests.workflows import canary_cluster_standin
from tests.workflows.workflow_files import REPO_ROOT, WORKFLOW_DIR, steps

SCRIPT = REPO_ROOT / "hack" / "model-release.sh"
STANDIN = Path(canary_cluster_standin.__file__)
BASE_ARGS = ["--namespace", "models", "--isvc", "iris", "--name", "v2", "--storage-uri", "pvc://models/iris/2"]
ANALYSIS_ARGS = [
    "--steps", "10,25,50", "--interval", "30s", "--threshold", "2",
    "--min-success-rate", "99.5", "--max-p99-ms", "250",
]  # fmt: skip


@dataclass
class Cluster:
    """The stand-in tools on PATH, and the state file they share."""

    bin_dir: Path
    state_file: Path

    def script(self, **overrides: Any) -> None:
        state = {"start_exit": 0, "run_exit": 0, "apply_exit": 0, "phase_before": "", "phases": ["Progressing"]}
        state |= overrides
        self.state_file.write_text(json.dumps({**state, "calls": [], "applied": "", "started": False}))

    @property
    def state(self) -> dict[str, Any]:
        return dict(json.loads(self.state_file.read_text()))

    def calls(self, tool: str) -> list[list[str]]:
        return [call[1:] for call in self.state["calls"] if call[0] == tool]

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}",
            "STANDIN_STATE": str(self.state_file),
            "MODEL_RELEASE_POLL_SECONDS": "0.05",
        }


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("servekit-canary", "kubectl"):
        wrapper = bin_dir / tool
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" {tool} "$@"\n')
        wrapper.chmod(0o755)
    standins = Cluster(bin_dir, tmp_path / "cluster.json")
    standins.script()
    return standins


def run_release(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_script(SCRIPT, *args, env=env)


# --------------------------------------------------------------------------- cli mode


def test_cli_mode_starts_then_runs_the_analysis_and_exits_0_when_promoted(cluster: Cluster) -> None:
    result = run_release(
        *BASE_ARGS, "--weight", "10", "--prometheus-url", "http://prometheus.monitoring:9090", *ANALYSIS_ARGS,
        env=cluster.env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert cluster.calls("servekit-canary") == [
        ["start", "iris", "--namespace", "models", "--name", "v2", "--storage-uri", "pvc://models/iris/2",
         "--weight", "10"],
        ["run", "iris", "--namespace", "models", "--prometheus-url", "http://prometheus.monitoring:9090",
         *ANALYSIS_ARGS],
    ]  # fmt: skip
    assert "PROMOTED: canary 'v2' now serves all of models/iris" in result.stdout
    assert cluster.calls("kubectl") == [], "cli mode with a URL needs no kubectl"


@pytest.mark.parametrize(
    ("run_exit", "expected", "message"),
    [(1, 1, "ROLLED BACK: canary 'v2' of models/iris failed its analysis"), (2, 2, "usage or API error"),
     (3, 2, "stopped with exit status 3")],
)  # fmt: skip
def test_cli_mode_passes_on_the_verdict(cluster: Cluster, run_exit: int, expected: int, message: str) -> None:
    cluster.script(run_exit=run_exit)
    result = run_release(*BASE_ARGS, "--prometheus-url", "http://prometheus:9090", env=cluster.env())
    assert result.returncode == expected, result.stdout + result.stderr
    assert message in result.stdout + result.stderr
    if expected == 1:  # what the controller and KServe recorded, for the workflow's log
        assert "canary v2 failed 2 checks" in result.stderr


def test_a_failed_start_is_an_error_and_nothing_is_analysed(cluster: Cluster) -> None:
    cluster.script(start_exit=2)
    result = run_release(*BASE_ARGS, "--prometheus-url", "http://prometheus:9090", env=cluster.env())
    assert result.returncode == 2
    assert "servekit-canary start failed (exit status 2)" in result.stderr
    assert [call[0] for call in cluster.calls("servekit-canary")] == ["start"]


def test_prometheus_service_is_reached_through_a_port_forward_that_is_stopped(cluster: Cluster) -> None:
    result = run_release(*BASE_ARGS, "--prometheus-service", "monitoring/prometheus-operated:9090", env=cluster.env())
    assert result.returncode == 0, result.stderr
    assert cluster.calls("kubectl") == [["-n", "monitoring", "port-forward", "service/prometheus-operated", ":9090"]]
    (run,) = [call for call in cluster.calls("servekit-canary") if call[0] == "run"]
    assert run[run.index("--prometheus-url") + 1] == f"http://127.0.0.1:{canary_cluster_standin.FORWARDED_PORT}"
    with pytest.raises(ProcessLookupError):
        os.kill(cluster.state["port_forward_pid"], 0)


# --------------------------------------------------------------------------- controller mode


def test_controller_mode_applies_the_analysis_and_ignores_the_last_rollouts_verdict(cluster: Cluster) -> None:
    # The previous rollout ended Succeeded; the controller takes two reads to notice the new canary.
    cluster.script(phase_before="Succeeded", phases=["=", "=", "Progressing", "Progressing", "Failed"])
    result = run_release(
        *BASE_ARGS, "--mode", "controller", "--prometheus-url", "http://prometheus:9090", *ANALYSIS_ARGS,
        env=cluster.env(),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ROLLED BACK" in result.stdout
    assert yaml.safe_load(cluster.state["applied"]) == {
        "apiVersion": "servekit.dev/v1alpha1",
        "kind": "CanaryAnalysis",
        "metadata": {"name": "iris", "namespace": "models"},
        "spec": {
            "inferenceService": "iris", "steps": [10, 25, 50], "interval": "30s", "threshold": 2,
            "minSuccessRate": 99.5, "maxP99Ms": 250, "prometheusUrl": "http://prometheus:9090",
        },
    }  # fmt: skip
    kubectl = cluster.calls("kubectl")
    assert kubectl[0] == ["apply", "--server-side", "--field-manager=servekit-model-release", "-f", "-"]
    phases = [
        line.rsplit("phase ", 1)[1] for line in result.stdout.splitlines() if "CanaryAnalysis models/iris:" in line
    ]
    assert phases == ["Succeeded", "Progressing", "Failed"], "the old Succeeded was not taken for a verdict"


def test_controller_mode_waits_through_a_manual_gate(cluster: Cluster) -> None:
    cluster.script(phases=["Progressing", "Paused", "Paused", "Paused", "Succeeded"])
    result = run_release(*BASE_ARGS, "--mode", "controller", env=cluster.env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("held at a manual gate: 'servekit-canary promote iris --namespace models'") == 1
    assert "PROMOTED" in result.stdout
    assert yaml.safe_load(cluster.state["applied"])["spec"] == {"inferenceService": "iris"}, "defaults are left out"


def test_controller_mode_without_a_verdict_in_time_is_an_error(cluster: Cluster) -> None:
    cluster.script(phases=["Progressing"])
    result = run_release(*BASE_ARGS, "--mode", "controller", "--timeout", "1", env=cluster.env())
    assert result.returncode == 2
    assert "no verdict from the controller within 1s (phase Progressing); the canary is still in place" in result.stderr


def test_controller_mode_stops_when_the_analysis_cannot_be_applied(cluster: Cluster) -> None:
    cluster.script(apply_exit=1)
    result = run_release(*BASE_ARGS, "--mode", "controller", env=cluster.env())
    assert result.returncode == 2
    assert "is the servekit-canary controller's CRD installed?" in result.stderr
    assert cluster.calls("servekit-canary") == []


def test_missing_tool_is_an_error_not_a_rollback(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "basename", "awk", "grep"):
        (bin_dir / tool).symlink_to(shutil.which(tool))  # type: ignore[arg-type]
    result = run_release(*BASE_ARGS, "--prometheus-url", "http://p:9090", env={"PATH": str(bin_dir)})
    assert result.returncode == 2
    assert "servekit-canary is required" in result.stderr


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "v2", "--image", "x:1"], "--isvc is required"),
        (["--isvc", "iris", "--image", "x:1"], "--name is required"),
        (["--isvc", "iris", "--name", "v2"], "give the new version: --storage-uri, --image or both"),
        ([*BASE_ARGS, "--mode", "argo"], "--mode 'argo' is not cli or controller"),
        ([*BASE_ARGS, "--isvc", "Iris"], "--isvc 'Iris' is not an InferenceService name"),
        ([*BASE_ARGS, "--weight", "0"], "--weight '0' is not a percent from 1 to 100"),
        ([*BASE_ARGS, "--steps", "10;rm -rf /"], "--steps '10;rm -rf /' is not a comma-separated list"),
        ([*BASE_ARGS, "--interval", "soon"], "--interval 'soon' is not a duration"),
        ([*BASE_ARGS, "--min-success-rate", "101"], "--min-success-rate '101' is not a percent"),
        ([*BASE_ARGS, "--max-p99-ms", "0"], "--max-p99-ms '0' is not a number of milliseconds > 0"),
        ([*BASE_ARGS, "--prometheus-url", 'http://p" x'], "is not an http:// or https:// URL"),
        (BASE_ARGS, "--mode cli needs --prometheus-url or --prometheus-service"),
        ([*BASE_ARGS, "--mode", "controller", "--prometheus-service", "m/p:9090"], "--prometheus-service is for"),
        ([*BASE_ARGS, "--prometheus-url", "http://p", "--prometheus-service", "m/p:9090"], "not both"),
    ],
)
def test_bad_command_lines_exit_2_before_any_tool_runs(cluster: Cluster, args: list[str], message: str) -> None:
    result = run_release(*args, env=cluster.env())
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert cluster.state["calls"] == []


def test_valid_values_are_accepted() -> None:
    values = ["--weight", "100", "--min-success-rate", "99.95", "--max-p99-ms", "0.5", "--interval", "1m30s"]
    result = run_release(*BASE_ARGS, "--prometheus-url", "https://p:9090/prom", *values, "--dry-run")
    assert result.returncode == 0, result.stderr


def test_dry_run_prints_the_commands_and_changes_nothing() -> None:
    result = run_release(
        *BASE_ARGS[:-2], "--storage-uri", "s3://models/iris 2", "--image", "ghcr.io/acme/servekit-predictor:0.2.0",
        "--prometheus-service", "monitoring/prometheus:9090", "--steps", "5,50", "--dry-run",
        env={"PATH": "/usr/bin:/bin"},  # no servekit-canary, no kubectl: none is needed
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("would run: ")] == [
        "would run: servekit-canary start iris --namespace models --name v2 --storage-uri 's3://models/iris 2'"
        " --image ghcr.io/acme/servekit-predictor:0.2.0",
        "would run: servekit-canary run iris --namespace models --prometheus-url http://127.0.0.1:FORWARDED-PORT"
        " --steps 5,50",
    ]


# --------------------------------------------------------------------------- the workflow step


def release_step() -> dict[str, Any]:
    (step,) = [s for s in steps(WORKFLOW_DIR / "model-release.yml") if s.data.get("id") == "release"]
    return step.data


def step_env(step: dict[str, Any], inputs: Mapping[str, str], variables: Mapping[str, str]) -> dict[str, str]:
    """The step's env: as GitHub fills it, for the only two forms it uses: inputs.X and vars.X."""
    env = {}
    for name, template in step["env"].items():
        kind, _, key = template.removeprefix("${{ ").removesuffix(" }}").partition(".")
        assert kind in {"inputs", "vars"} and template.endswith(" }}"), f"{name}: {template!r} is not evaluated here"
        env[name] = (inputs if kind == "inputs" else variables).get(key, "")
    return env


def run_step(
    tmp_path: Path, inputs: Mapping[str, str], variables: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """The step's script as the runner runs it, with hack/model-release.sh in --dry-run."""
    (tmp_path / "hack").mkdir()
    (tmp_path / "hack" / "model-release.sh").write_text(f'exec bash "{SCRIPT}" "$@" --dry-run\n')
    output = tmp_path / "github-output"
    output.touch()
    step = release_step()
    defaults = {"mode": "cli", "timeout-minutes": "60"}
    env = {**os.environ, **step_env(step, {**defaults, **inputs}, variables), "GITHUB_OUTPUT": str(output)}
    env |= {"NAMESPACE": inputs["namespace"], "ISVC": inputs["inferenceservice"]}  # the job's env
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def commands_run(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.removeprefix("would run: ") for line in result.stdout.splitlines() if line.startswith("would run: ")]


ROLLOUT = {"namespace": "models", "inferenceservice": "iris", "canary-name": "v2", "image": "ghcr.io/a/p:2"}


def test_workflow_step_cli_mode_takes_prometheus_from_the_repository_variable(tmp_path: Path) -> None:
    inputs = {**ROLLOUT, "steps": "10,50", "max-p99-ms": "300"}
    result = run_step(tmp_path, inputs, {"SERVEKIT_PROMETHEUS_URL": "https://prom.example:9090"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert commands_run(result) == [
        "servekit-canary start iris --namespace models --name v2 --image ghcr.io/a/p:2",
        "servekit-canary run iris --namespace models --prometheus-url https://prom.example:9090 --steps 10,50"
        " --max-p99-ms 300",
    ]
    assert (tmp_path / "github-output").read_text() == "status=0\n"


def test_workflow_step_inputs_win_over_the_variables(tmp_path: Path) -> None:
    inputs = {**ROLLOUT, "prometheus-service": "monitoring/prometheus:9090", "weight": "5"}
    result = run_step(tmp_path, inputs, {"SERVEKIT_PROMETHEUS_URL": "https://prom.example:9090"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--prometheus-url http://127.0.0.1:FORWARDED-PORT" in commands_run(result)[1]
    assert commands_run(result)[0].endswith("--weight 5")


def test_workflow_step_controller_mode_gets_only_an_explicit_prometheus(tmp_path: Path) -> None:
    inputs = {**ROLLOUT, "mode": "controller", "threshold": "3", "timeout-minutes": "90"}
    result = run_step(tmp_path, inputs, {"SERVEKIT_PROMETHEUS_URL": "https://prom.example:9090"})
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = yaml.safe_load(result.stdout.split("would apply:\n", 1)[1].split("\nmodel-release.sh:", 1)[0])
    assert manifest["spec"] == {"inferenceService": "iris", "threshold": 3}


@pytest.mark.parametrize("timeout", ["soon", "a[$(touch pwned)]", "0"])
def test_workflow_step_checks_the_timeout_before_arithmetic(tmp_path: Path, timeout: str) -> None:
    result = run_step(tmp_path, {**ROLLOUT, "timeout-minutes": timeout}, {"SERVEKIT_PROMETHEUS_URL": "http://p"})
    assert result.returncode == 2
    assert "is not a whole number of minutes" in result.stdout
    assert not (tmp_path / "pwned").exists()


def test_workflow_step_reports_a_bad_input_as_status_2(tmp_path: Path) -> None:
    result = run_step(tmp_path, {**ROLLOUT, "interval": "one minute"}, {"SERVEKIT_PROMETHEUS_URL": "http://p"})
    assert result.returncode == 2
    assert "--interval 'one minute' is not a duration" in result.stderr
    assert (tmp_path / "github-output").read_text() == "status=2\n"
