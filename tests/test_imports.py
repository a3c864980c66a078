"""The helper library's import graph (module-level and function-level imports alike) has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from datl_helpers.provenance import imports_of

PACKAGE = Path(__file__).resolve().parents[1] / "datl_helpers"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path of modules, or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_helper_library_has_no_import_cycle():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    graph = {m: imports_of(PACKAGE / f"{m}.py") & modules - {m} for m in modules}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_every_import_of_a_helper_name_resolves():
    """Function-level imports run only when their function does: check every one names something real."""
    import importlib

    missing = []
    for path in [*PACKAGE.glob("*.py"), *PACKAGE.parent.glob("tests/*.py"), *PACKAGE.parent.glob("data_scripts/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("datl_helpers"):
                module = importlib.import_module(node.module)
                missing += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                            if not hasattr(module, a.name) and not _is_submodule(node.module, a.name)]
    assert not missing, missing


def _is_submodule(package: str, name: str) -> bool:
    return package == "datl_helpers" and (PACKAGE / f"{name}.py").exists()
