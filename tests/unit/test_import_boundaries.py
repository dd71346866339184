"""Each image carries what its code imports, and no more.

`pip install servekit` without extras must serve: the predictor image installs no canary or backup
extra, so serving code must never import kopf, rich, helm-python-sdk or boto3 (the Kubernetes
client and httpx come with KServe). The canary controller image installs the canary extra and the
base dependencies pyproject.toml names under [tool.servekit.controller-image], so servekit-canary
must import nothing of KServe, scikit-learn or PyTorch. Both are checked twice: statically (every
import statement, those inside functions too) and by running the entry point in an interpreter
that refuses the modules the image lacks (tests/support/dependency_sets.py).
"""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dependency_sets import (
    REPO,
    missing_from_controller_image,
    missing_from_predictor_image,
    run_without,
)

PACKAGE = REPO / "predictor"
# The tools beside the server; everything else under predictor/ is serving code.
TOOL_PACKAGES = ("canary", "backup")


def imports_in(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in a file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def serving_files() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts[0] not in TOOL_PACKAGES)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.fixture(scope="module")
def not_in_predictor_image() -> set[str]:
    return missing_from_predictor_image()


@pytest.fixture(scope="module")
def not_in_controller_image() -> set[str]:
    return missing_from_controller_image()


def test_hidden_modules_look_uninstalled() -> None:
    """The checks below can fail: a hidden module cannot be imported, even inside a function, and a
    probe for it answers None, as where its distribution is not installed."""
    probe = "import importlib.util\nprint(importlib.util.find_spec('json'))\n"
    result = run_without({"json"}, probe + "def later():\n    import json.decoder\nlater()")
    assert result.returncode == 1
    assert result.stdout == "None\n"
    assert result.stderr.endswith("ModuleNotFoundError: No module named 'json'\n"), result.stderr
    assert run_without(set(), "import json").returncode == 0


def test_the_images_lack_what_only_the_other_side_needs(
    not_in_predictor_image: set[str], not_in_controller_image: set[str]
) -> None:
    # The tools' own dependencies, derived from the installed metadata, not listed by hand here.
    tools_only = {"kopf", "rich", "helm_python", "boto3", "botocore"}
    assert tools_only <= not_in_predictor_image, sorted(not_in_predictor_image)
    # KServe brings the Kubernetes client and httpx: the predictor image has them anyway.
    assert not {"kubernetes", "httpx", "pydantic", "yaml"} & not_in_predictor_image
    assert {"kserve", "sklearn", "numpy", "scipy", "torch"} <= not_in_controller_image, sorted(not_in_controller_image)
    assert not {"kopf", "rich", "kubernetes", "httpx", "pydantic", "yaml"} & not_in_controller_image


def test_serving_code_imports_none_of_the_tools_dependencies(not_in_predictor_image: set[str]) -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}: import {module}"
        for path in serving_files()
        for line, module in imports_in(path)
        if module.partition(".")[0] in not_in_predictor_image
    ]
    assert not found, "serving code imports what only the canary or backup tool installs:\n" + "\n".join(found)


# The frameworks of servekit's optional runtime extras (pyproject.toml), by import name.
OPTIONAL_FRAMEWORKS = ("torch", "onnxruntime", "xgboost", "lightgbm", "tensorflow")


def test_the_server_starts_up_to_its_parser_without_the_tools_dependencies(not_in_predictor_image: set[str]) -> None:
    """predictor.server.main (the entry point of `python -m predictor` and servekit-predictor) and
    every serving module import, and the server's parser (KServe's flags and ours) builds."""
    modules = [module_name(path) for path in serving_files() if path.name != "__main__.py"]
    # A runtime of a framework this environment lacks (an optional extra, e.g. tensorflow, which
    # `make test` leaves out) may fail on that framework's import, and on nothing else.
    absent = sorted(name for name in OPTIONAL_FRAMEWORKS if importlib.util.find_spec(name) is None)
    code = (
        "import importlib, sys\n"
        "from predictor.server import main\n"
        "parser = main.build_parser()\n"
        "assert '--model_dir' in parser.format_help(), parser.format_help()\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as exc:\n"
        f"        if exc.name not in {absent!r}:\n"
        "            raise\n"
        "print('imported', len(sys.modules))\n"
    )
    result = run_without(not_in_predictor_image, code, timeout=110)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported "), result.stdout


def test_canary_code_imports_only_what_the_controller_image_installs(not_in_controller_image: set[str]) -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}: import {module}"
        for path in sorted((PACKAGE / "canary").rglob("*.py"))
        for line, module in imports_in(path)
        if module.partition(".")[0] in not_in_controller_image
        or (module.startswith("predictor.") and module.split(".")[1] not in ("canary", "kube_object"))
    ]
    assert not found, "servekit-canary imports what its image lacks:\n" + "\n".join(found)


def test_servekit_canary_runs_its_controller_path_with_only_its_image(not_in_controller_image: set[str]) -> None:
    """Every module of predictor.canary imports; `servekit-canary controller --help` answers; the
    controller builds kopf's registry (what it runs, short of a cluster)."""
    entry = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["servekit-canary"]
    module, _, function = entry.partition(":")
    canary_modules = [module_name(path) for path in sorted((PACKAGE / "canary").rglob("*.py"))]
    code = (
        "import argparse, contextlib, importlib, io\n"
        f"for name in {canary_modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"main = getattr(importlib.import_module({module!r}), {function!r})\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        "        main(['controller', '--help'])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "assert '--prometheus-url' in out.getvalue(), out.getvalue()\n"
        "from predictor.canary.controller import build_registry\n"
        "args = argparse.Namespace(selector='app=iris', tick=10.0, kubeconfig=None, context=None)\n"
        "registry = build_registry(args)\n"
        "import kopf, rich.live\n"
        "assert isinstance(registry, kopf.OperatorRegistry), type(registry)\n"
        "print('controller registry', type(registry).__name__)\n"
    )
    result = run_without(not_in_controller_image, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "controller registry OperatorRegistry", result.stdout
