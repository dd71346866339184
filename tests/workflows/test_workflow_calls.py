"""Every `make` target and repository script a workflow's `run:` steps call exists, and takes the
flags the workflow gives it: make answers for the targets (`make -n`), the scripts' own `--help` for
their flags."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache

import pytest

from tests.workflows.workflow_files import REPO_ROOT, Step, all_steps, array_flags, commands

REPO_PATH = re.compile(r"(?:\./)?((?:hack|\.ci|tests)/[\w./-]+)")
FLAG = re.compile(r"^--[a-z][a-z0-9-]*")
# Stands for a make variable's value in `make -n`, to find the command that receives it.
SENTINEL = "__WORKFLOW_VALUE__"


@dataclass
class Call:
    """One call of a make target or a repository script from a workflow step."""

    step: Step
    words: list[str]
    flags: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.step.label}: {shlex.join(self.words)}"


def expanded_arrays(words: list[str]) -> list[str]:
    """Names of the bash arrays a command expands: "${args[@]}" or "${args[*]}"."""
    return re.findall(r"\$\{(\w+)\[[@*]\]\}", " ".join(words))


def calls_in(step: Step) -> tuple[list[Call], list[Call]]:
    """(make calls, script calls) of a step, each with the --flags it passes."""
    makes, scripts = [], []
    for words in commands(step.run or ""):
        while words and words[0] in {"sudo", "exec", "time"}:
            words = words[1:]
        if not words:
            continue
        array_given = [flag for name in expanded_arrays(words) for flag in array_flags(step.run or "", name)]
        if words[0] == "make":
            values = [word.partition("=")[2] for word in words[1:] if "=" in word]
            literal = [flag for value in values if "$" not in value for flag in shlex.split(value)]
            makes.append(Call(step, words, [f for f in literal + array_given if FLAG.match(f)]))
            continue
        start = 1 if words[0] in {"bash", "sh"} else 0
        if len(words) > start and REPO_PATH.fullmatch(words[start]):
            given = [word.split("=")[0] for word in words[start + 1 :] if FLAG.match(word)]
            scripts.append(Call(step, words[start:], given + array_given))
    return makes, scripts


MAKE_CALLS = [call for step in all_steps() for call in calls_in(step)[0]]
SCRIPT_CALLS = [call for step in all_steps() for call in calls_in(step)[1]]


def call_id(call: Call) -> str:
    return f"{call.step.workflow}:{call.words[1] if call.words[0] == 'make' else call.words[0]}"


def make_dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-n", "--no-print-directory", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@cache
def help_text(command: tuple[str, ...]) -> str:
    result = subprocess.run(
        [*command, "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{shlex.join(command)} --help: exit {result.returncode}\n{result.stderr}"
    return result.stdout


def command_receiving(target: str, variable: str) -> tuple[str, ...]:
    """The command of TARGET's recipe that VARIABLE's value is appended to, without the value."""
    dry = make_dry_run(target, f"{variable}={SENTINEL}")
    (line,) = [line for line in dry.stdout.splitlines() if SENTINEL in line]
    words = shlex.split(line.split(SENTINEL)[0])
    # The recipe's own interpreter may not exist yet on a fresh checkout (make builds .venv first).
    return tuple(sys.executable if word.endswith("/bin/python") else word for word in words)


def test_workflows_call_make_and_the_repository_scripts() -> None:
    assert {call.words[1] for call in MAKE_CALLS} >= {"bench", "e2e"}
    assert {call.words[0] for call in SCRIPT_CALLS} >= {".ci/run", "hack/model-release.sh", "hack/kind-up.sh"}


@pytest.mark.parametrize("call", MAKE_CALLS, ids=call_id)
def test_make_targets_exist(call: Call) -> None:
    targets = [word for word in call.words[1:] if "=" not in word and not word.startswith("-")]
    assert targets, call.label
    variables = [f"{w.partition('=')[0]}={SENTINEL}" for w in call.words[1:] if "=" in w]
    dry = make_dry_run(*targets, *variables)
    assert dry.returncode == 0, f"{call.label}: {dry.stderr.strip()}"
    for variable in variables:
        assert SENTINEL in dry.stdout, f"{call.label}: the recipe never uses {variable.split('=')[0]}"


@pytest.mark.parametrize("call", [c for c in MAKE_CALLS if c.flags], ids=call_id)
def test_make_variables_carry_flags_the_command_takes(call: Call) -> None:
    target = call.words[1]
    (variable,) = [w.partition("=")[0] for w in call.words[2:] if "=" in w]
    accepted = help_text(command_receiving(target, variable))
    for flag in call.flags:
        assert re.search(rf"(?<![-\w]){re.escape(flag)}(?![-\w])", accepted), f"{call.label}: {flag} is not taken"


@pytest.mark.parametrize("call", SCRIPT_CALLS, ids=call_id)
def test_scripts_exist(call: Call) -> None:
    assert (REPO_ROOT / call.words[0]).is_file(), f"{call.label}: {call.words[0]} is not in the repository"


@pytest.mark.parametrize("call", [c for c in SCRIPT_CALLS if c.flags], ids=call_id)
def test_scripts_take_the_flags_they_are_given(call: Call) -> None:
    accepted = help_text(("bash", call.words[0]))
    for flag in call.flags:
        assert re.search(rf"(?<![-\w]){re.escape(flag)}(?![-\w])", accepted), f"{call.label}: {flag} not in --help"


def test_ci_runs_what_dot_ci_run_runs() -> None:
    """ci.yml calls .ci/run itself, so GitHub and the project's CI cannot drift apart."""
    ci_run = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci_run, re.MULTILINE)
    assert any(call.step.workflow == "ci.yml" and call.words == [".ci/run"] for call in SCRIPT_CALLS)


def test_the_bench_smoke_step_is_quick_mode() -> None:
    (bench,) = [call for call in MAKE_CALLS if call.words[1] == "bench"]
    assert bench.step.workflow == "ci.yml" and "--quick" in bench.flags
