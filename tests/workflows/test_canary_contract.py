"""The canary tool as hack/model-release.sh and model-release.yml use it: every `servekit-canary`
subcommand and flag they pass, and the CanaryAnalysis they apply, checked against the real tool and
its CRD: a flag or field the tool does not take fails here, not in a user's release."""

from __future__ import annotations

import copy
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.k8s_checks import make_strict
from tests.workflows.workflow_files import REPO_ROOT, WORKFLOW_DIR, commands, steps

SCRIPT = REPO_ROOT / "hack" / "model-release.sh"
EVERY_SETTING = [
    "--isvc", "iris", "--name", "v2", "--storage-uri", "s3://m/2", "--image", "r/p:2", "--weight", "10",
    "--prometheus-url", "http://prometheus:9090", "--steps", "10,50", "--interval", "1m", "--threshold", "2",
    "--min-success-rate", "99", "--max-p99-ms", "250", "--dry-run",
]  # fmt: skip
CRD_SEARCH_DIRS = ("helm", "manifests")


def dry_run(*extra: str) -> str:
    result = subprocess.run(
        ["bash", str(SCRIPT), *EVERY_SETTING, *extra], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def flags_used() -> dict[str, set[str]]:
    """servekit-canary subcommand -> the flags the script and the workflow give it."""
    used: dict[str, set[str]] = {"promote": {"--namespace"}}  # named in the manual-gate message
    lines = [line.removeprefix("would run: ") for line in dry_run().splitlines() if line.startswith("would run: ")]
    workflow_commands = [
        words for step in steps(WORKFLOW_DIR / "model-release.yml") for words in commands(step.run or "")
    ]
    for words in [shlex.split(line) for line in lines] + workflow_commands:
        if words[0].endswith("servekit-canary") and len(words) > 1 and not words[1].startswith("-"):
            used.setdefault(words[1], set()).update(w for w in words[2:] if w.startswith("--"))
    return used


def canary_cli() -> str:
    beside_python = Path(sys.executable).parent / "servekit-canary"
    found = str(beside_python) if beside_python.is_file() else shutil.which("servekit-canary")
    if found is None:
        pytest.fail("servekit-canary is not installed beside this Python: run `make .venv/.dev-installed`")
    return found


def canary_analysis_crd() -> dict[str, Any]:
    for directory in CRD_SEARCH_DIRS:
        for path in sorted((REPO_ROOT / directory).rglob("*.yaml")):
            text = path.read_text()
            if "CustomResourceDefinition" not in text or "CanaryAnalysis" not in text or "{{" in text:
                continue
            for document in yaml.safe_load_all(text):
                if (document or {}).get("kind") == "CustomResourceDefinition" and (
                    document["spec"]["names"]["kind"] == "CanaryAnalysis"
                ):
                    return dict(document)
    pytest.fail(f"no CanaryAnalysis CustomResourceDefinition under {CRD_SEARCH_DIRS}")


def test_the_script_uses_the_subcommands_the_contract_names() -> None:
    used = flags_used()
    assert set(used) == {"start", "run", "rollback", "status", "promote"}
    assert used["start"] == {"--namespace", "--name", "--storage-uri", "--image", "--weight"}
    assert used["run"] == {
        "--namespace", "--prometheus-url", "--steps", "--interval", "--threshold", "--min-success-rate", "--max-p99-ms",
    }  # fmt: skip


@pytest.mark.parametrize("subcommand", ["start", "run", "rollback", "status", "promote"])
def test_servekit_canary_takes_every_flag_it_is_given(subcommand: str) -> None:
    cli = canary_cli()
    result = subprocess.run([cli, subcommand, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"servekit-canary {subcommand} --help: exit {result.returncode}\n{result.stderr}"
    for flag in sorted(flags_used()[subcommand]):
        assert re.search(rf"(?<![-\w]){re.escape(flag)}(?![-\w])", result.stdout), f"{subcommand}: no {flag}"


def test_the_canary_analysis_it_applies_fits_the_crd() -> None:
    crd = canary_analysis_crd()
    assert crd["spec"]["group"] == "servekit.dev"
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = make_strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    schema["properties"].pop("status", None)
    schema["properties"]["metadata"] = {"type": "object"}
    output = dry_run("--mode", "controller")
    manifest = yaml.safe_load(output.split("would apply:\n", 1)[1].split("\nmodel-release.sh:", 1)[0])
    jsonschema.validate(manifest, schema)
