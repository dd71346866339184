"""The GitHub Actions workflows as data: jobs, steps, `run:` scripts, `uses:` pins, and the commands
the scripts call. Pure reading; nothing here runs a workflow (nothing here can)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_DIR = REPO_ROOT / ".github" / "workflows"
DEPENDABOT_FILE = REPO_ROOT / ".github" / "dependabot.yml"

# `uses: owner/repo[/path]@ref  # comment` as written on one line.
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<action>[^@\s]+)@(?P<ref>\S+)(?:\s+#\s*(?P<comment>.*\S))?\s*$")
FULL_SHA = re.compile(r"[0-9a-f]{40}")
TAG = re.compile(r"v\d+(?:\.\d+){0,2}")
# What separates one command from the next on a shell line.
SHELL_OPERATORS = {"|", "||", "&&", ";", "&", "(", ")", "{", "}", "then", "do", "else", "!"}


@dataclass(frozen=True)
class Step:
    workflow: str
    job: str
    index: int
    data: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.workflow}:{self.job}:{self.data.get('name') or self.data.get('uses') or self.index}"

    @property
    def run(self) -> str | None:
        run = self.data.get("run")
        return run if isinstance(run, str) else None

    @property
    def uses(self) -> str | None:
        uses = self.data.get("uses")
        return uses if isinstance(uses, str) else None


@dataclass(frozen=True)
class UsesPin:
    workflow: str
    line: int
    action: str
    ref: str
    comment: str | None


def workflow_paths() -> list[Path]:
    return sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])


@cache
def load_workflow(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: expected a mapping at the top, got {type(data).__name__}")
    # YAML 1.1 reads the key `on` as the boolean true.
    if True in data:
        data["on"] = data.pop(True)
    return data


def jobs(path: Path) -> dict[str, dict[str, Any]]:
    return dict(load_workflow(path)["jobs"])


def steps(path: Path) -> list[Step]:
    return [
        Step(path.name, job_id, index, step)
        for job_id, job in jobs(path).items()
        for index, step in enumerate(job.get("steps", []))
    ]


def all_steps() -> list[Step]:
    return [step for path in workflow_paths() for step in steps(path)]


def uses_pins(path: Path) -> list[UsesPin]:
    """Every `uses:` line with its ref and trailing comment (which YAML parsing would drop)."""
    pins = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if match := USES_LINE.match(line):
            pins.append(UsesPin(path.name, number, match["action"], match["ref"], match["comment"]))
    return pins


def logical_lines(script: str) -> list[str]:
    """Shell lines with backslash continuations joined; comments and blank lines dropped."""
    lines: list[str] = []
    pending = ""
    for raw in script.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def commands(script: str) -> list[list[str]]:
    """Simple commands of a script, as words (quotes removed, expansions left as written)."""
    found: list[list[str]] = []
    for line in logical_lines(script):
        lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;()")
        lexer.whitespace_split = True
        lexer.commenters = ""
        try:
            words = list(lexer)
        except ValueError:  # a quote spanning lines (heredoc bodies): not a command line
            continue
        current: list[str] = []
        for word in [*words, ";"]:
            if word in SHELL_OPERATORS or re.fullmatch(r"\d?[<>]&?\d?", word):
                if current:
                    found.append(current)
                current = []
            else:
                current.append(word)
    return found


def array_flags(script: str, name: str) -> list[str]:
    """The literal --flags a script puts into the bash array NAME (`name=(...)`, `name+=(...)`)."""
    flags: list[str] = []
    for match in re.finditer(rf"(?<![\w-]){re.escape(name)}\+?=\(", script):
        depth, end = 1, match.end()
        while depth and end < len(script):  # to the `)` that closes the array, past any $((...))
            depth += {"(": 1, ")": -1}.get(script[end], 0)
            end += 1
        flags += re.findall(r"(?<![\w$-])--[a-z][a-z0-9-]*", script[match.end() : end])
    return flags
