#!/usr/bin/env python3
"""Generate the values table of a Helm chart's README from the `## @param` comments in values.yaml.

values.yaml documents every value bitnami-style, on the line(s) above it:

    ## @section Image parameters
    image:
      ## @param image.repository Predictor image repository
      repository: servekit/predictor

This script renders one Markdown table per section (name, description, default value) and
writes it into README.md between the markers

    <!-- values-table:begin -->
    <!-- values-table:end -->

It fails when a value has no `@param` (itself or a parent object documented as a whole) or when
a `@param` names a key that values.yaml does not have. With --check it writes nothing and fails
when README.md is out of date (CI runs this).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BEGIN = "<!-- values-table:begin -->"
END = "<!-- values-table:end -->"
DEFAULT_CHART = Path(__file__).resolve().parent.parent / "helm" / "servekit"

SECTION_RE = re.compile(r"^\s*##\s*@section\s+(?P<title>.+?)\s*$")
PARAM_RE = re.compile(r"^\s*##\s*@param\s+(?P<key>\S+)\s+(?P<description>.+?)\s*$")


class DocError(Exception):
    """values.yaml and its @param comments disagree."""


@dataclass
class Section:
    title: str
    params: list[tuple[str, str]] = field(default_factory=list)


def parse_comments(text: str) -> list[Section]:
    """The @section and @param comments of values.yaml, in file order."""
    sections: list[Section] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if match := SECTION_RE.match(line):
            sections.append(Section(match["title"]))
        elif match := PARAM_RE.match(line):
            if not sections:
                raise DocError(f"values.yaml:{number}: @param {match['key']} comes before any @section")
            sections[-1].params.append((match["key"], match["description"]))
    return sections


def lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def leaf_paths(node: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the values a user sets: scalars, lists and empty maps."""
    if isinstance(node, dict) and node:
        paths: list[str] = []
        for key, child in node.items():
            paths.extend(leaf_paths(child, f"{prefix}.{key}" if prefix else str(key)))
        return paths
    return [prefix]


def check_coverage(values: dict[str, Any], documented: list[str]) -> None:
    problems = []
    for key in documented:
        try:
            lookup(values, key)
        except KeyError:
            problems.append(f"@param {key}: values.yaml has no such key")
    keys = set(documented)
    for path in leaf_paths(values):
        parts = path.split(".")
        if not any(".".join(parts[:i]) in keys for i in range(1, len(parts) + 1)):
            problems.append(f"{path}: no `## @param` documents it (or an object above it)")
    duplicates = sorted({key for key in documented if documented.count(key) > 1})
    problems.extend(f"@param {key}: documented more than once" for key in duplicates)
    if problems:
        raise DocError("values.yaml documentation is incomplete:\n  " + "\n  ".join(problems))


def format_value(value: Any) -> str:
    if value == "":
        text = '""'
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, separators=(",", ":"))
    return "`" + text.replace("|", "\\|") + "`"


def render_tables(values_text: str) -> str:
    values = yaml.safe_load(values_text) or {}
    sections = parse_comments(values_text)
    check_coverage(values, [key for section in sections for key, _ in section.params])
    blocks = []
    for section in sections:
        rows = [
            f"| `{key}` | {description.replace('|', chr(92) + '|')} | {format_value(lookup(values, key))} |"
            for key, description in section.params
        ]
        blocks.append("\n".join([f"### {section.title}", "", "| Name | Description | Value |", "|---|---|---|", *rows]))
    return "\n\n".join(blocks)


def splice(readme: str, tables: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise DocError(f"README.md needs the markers {BEGIN} and {END}")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{tables}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chart", type=Path, default=DEFAULT_CHART, help="chart directory (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="fail if README.md is stale instead of writing it")
    args = parser.parse_args(argv)

    readme_path = args.chart / "README.md"
    try:
        tables = render_tables((args.chart / "values.yaml").read_text())
        current = readme_path.read_text()
        wanted = splice(current, tables)
    except (DocError, OSError) as exc:
        print(f"gen-chart-readme: {exc}", file=sys.stderr)
        return 2
    if current == wanted:
        return 0
    if args.check:
        diff = difflib.unified_diff(
            current.splitlines(keepends=True), wanted.splitlines(keepends=True), str(readme_path), "generated"
        )
        sys.stderr.write("".join(diff))
        print(f"gen-chart-readme: {readme_path} is stale; run hack/gen-chart-readme.py", file=sys.stderr)
        return 1
    readme_path.write_text(wanted)
    print(f"gen-chart-readme: updated {readme_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
