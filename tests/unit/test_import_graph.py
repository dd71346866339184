"""The package's import graph, read from the source with ast: no cycles, and the layers apart.

Imports inside functions count too: a cycle hidden behind a function-level import still ties two
modules together, and is how the old workers.py <-> worker_server.py cycle lived.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "predictor"
# Modules that are tools beside the server, not part of it: serving code must not import them,
# and they must not import serving code (their images may lack the server's dependencies).
TOOLS = ("predictor.canary", "predictor.backup", "predictor.kube_object")
# The one module allowed to touch KServe's module globals and private names.
KSERVE_COMPAT = "predictor.server.kserve_compat"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> Iterator[str]:
    """The package's own modules that ``path`` imports (``from a.b import c`` counts as a.b.c when
    c is a module, else as a.b)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name in modules:
                yield name


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        # A package's __init__ is imported with any of its modules: an edge to it is no edge of interest.
        graph[name] = {target for target in imported_modules(path, modules) if not name.startswith(target + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path of module names, or None (depth-first search with three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "predictor.workers.worker_server" in graph, "the walk must see the package's modules"
    assert find_cycle(graph) is None


def is_tool(name: str) -> bool:
    return any(name == tool or name.startswith(tool + ".") for tool in TOOLS)


def test_serving_code_and_the_tools_do_not_import_each_other() -> None:
    crossings = sorted(
        f"{source} -> {target}"
        for source, targets in import_graph().items()
        for target in targets
        if target != "predictor" and is_tool(source) != is_tool(target) and not source.startswith("predictor.examples")
    )
    # The backup tool reads model manifests with the server's own parser: one shared contract.
    assert crossings == ["predictor.backup.models -> predictor.modeldir.spec"]


def reaches_kserve_model_server(path: Path) -> bool:
    """Imports ``kserve.model_server`` (whose globals ModelServer.start reads) or reads it as an attribute."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "kserve"
            and any(alias.name == "model_server" for alias in node.names)
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kserve.model_server"):
            return True
        if isinstance(node, ast.Import) and any(alias.name.startswith("kserve.model_server") for alias in node.names):
            return True
        if isinstance(node, ast.Attribute) and node.attr == "model_server":
            return True
    return False


def test_only_kserve_compat_touches_kserve_model_server() -> None:
    touching = sorted(module_name(path) for path in PACKAGE.rglob("*.py") if reaches_kserve_model_server(path))
    assert touching == [KSERVE_COMPAT]


def test_kserve_compat_names_what_it_relies_on() -> None:
    from kserve import model_server

    from predictor.server import kserve_compat

    assert "kserve 0.21" in (kserve_compat.__doc__ or "")
    missing = [name for name in kserve_compat.GLOBALS if not hasattr(model_server, name)]
    assert missing == [], f"kserve.model_server no longer has {missing}: see predictor/server/kserve_compat.py"
