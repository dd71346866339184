"""actionlint, built from its Go module by hack/install-actionlint.sh, over every workflow, with
shellcheck on every `run:` step. Nothing here can run GitHub Actions: this is the static check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.workflows.workflow_files import REPO_ROOT, workflow_paths

INSTALL_SCRIPT = REPO_ROOT / "hack" / "install-actionlint.sh"
# The first build fetches the module and compiles it: about a minute on two cores.
BUILD_TIMEOUT_SECONDS = 900

BAD_RUN_STEP = """\
name: bad
on: push
permissions: {}
jobs:
  bad:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    steps:
      - run: echo $GREETING world
"""


@pytest.fixture(scope="module")
def actionlint() -> list[str]:
    """actionlint at the pinned version, told where shellcheck is (it lints `run:` steps only then)."""
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck; `make test` installs it as root)")
    binary = Path(_install_script("--print-path").stdout.strip())
    if not binary.is_file():
        if shutil.which("go") is None:
            pytest.skip("actionlint is built from its Go module and Go is not installed (hack/install-actionlint.sh)")
        build = _install_script(timeout=BUILD_TIMEOUT_SECONDS)
        assert build.returncode == 0, f"hack/install-actionlint.sh failed:\n{build.stdout}{build.stderr}"
    return [str(binary), f"-shellcheck={shellcheck}", "-no-color"]


def _install_script(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL_SCRIPT), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_actionlint(command: list[str], *paths: Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *(str(path) for path in paths)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_there_are_the_four_workflows() -> None:
    assert {path.name for path in workflow_paths()} >= {"ci.yml", "e2e.yml", "release.yml", "model-release.yml"}


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS + 120)
def test_actionlint_is_the_pinned_version(actionlint: list[str]) -> None:
    version = subprocess.run([actionlint[0], "-version"], capture_output=True, text=True, timeout=30, check=True)
    pinned = next(
        line.split('"')[1] for line in INSTALL_SCRIPT.read_text().splitlines() if "ACTIONLINT_VERSION=" in line
    )
    assert version.stdout.splitlines()[0] == pinned


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS + 120)
def test_every_workflow_passes_actionlint_and_shellcheck(actionlint: list[str]) -> None:
    result = run_actionlint(actionlint, *workflow_paths())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS + 120)
def test_a_bad_run_step_fails_through_shellcheck(actionlint: list[str], tmp_path: Path) -> None:
    workflow = tmp_path / ".github" / "workflows" / "bad.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(BAD_RUN_STEP)
    result = run_actionlint(actionlint, workflow, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "shellcheck reported issue" in result.stdout and "SC2086" in result.stdout, result.stdout
    # The same step, quoted, passes: the failure above is shellcheck's, not a broken file.
    workflow.write_text(BAD_RUN_STEP.replace("echo $GREETING world", 'echo "${GREETING}" world'))
    fixed = run_actionlint(actionlint, workflow, cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
