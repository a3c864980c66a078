"""The helper library's import graph (module-level and function-level imports alike): layers that only
import downwards, no cycle, and a face that reaches every module by one short name."""

from __future__ import annotations

import ast
from pathlib import Path

from datl_helpers import FACE
from datl_helpers.core.provenance import imports_of, module_name

PACKAGE = Path(__file__).resolve().parents[1] / "datl_helpers"
# The layers, bottom up: a module may import from its own layer and the ones below.
LAYERS = ("core", "data", "transfer", "adaptation", "robustness", "beyond", "course", "cli")


def import_graph() -> dict[str, set[str]]:
    """module -> the modules it imports, for every module of the package (``core.errors``, ``data``, ...)."""
    files = [p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE]  # the face and __main__ stand above
    return {module_name(p): imports_of(p) - {module_name(p)} for p in files}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for each import from a layer into a higher one."""
    layer = lambda m: LAYERS.index(m.split(".")[0])  # noqa: E731
    return sorted(f"{a} -> {b}" for a, deps in graph.items() for b in deps if layer(b) > layer(a))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path of modules, or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt):], nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
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
    # cli.main dispatches to every command, and reproduce re-runs commands through it: the entry point stays out
    graph = {m: deps - {"cli.main"} for m, deps in import_graph().items() if m != "cli.main"}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_every_module_sits_in_a_layer_and_imports_only_downwards():
    graph = import_graph()
    assert {m.split(".")[0] for m in graph} == set(LAYERS)
    assert upward_imports(graph) == []
    assert upward_imports({"core.errors": {"course.claims"}, "course.claims": {"core.errors"}}) == [
        "core.errors -> course.claims"]


def test_the_face_reaches_every_module_once():
    """``from datl_helpers import dann`` for every module below the command line, one short name each."""
    import importlib

    modules = {m for m in import_graph() if m.count(".") == 1 and not m.startswith("cli.")}  # claims.augmentation: via claims
    assert set(FACE.values()) >= modules
    assert len(set(FACE.values())) == len(FACE)
    for short, dotted in FACE.items():
        assert importlib.import_module(f"datl_helpers.{dotted}") is getattr(importlib.import_module("datl_helpers"), short)


def test_every_import_of_a_helper_name_resolves():
    """Function-level imports run only when their function does: check every one names something real."""
    import importlib

    missing = []
    for path in [*PACKAGE.rglob("*.py"), *PACKAGE.parent.glob("tests/*.py"), *PACKAGE.parent.glob("data_scripts/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("datl_helpers"):
                module = importlib.import_module(node.module)
                missing += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                            if not hasattr(module, a.name) and not _is_submodule(node.module, a.name)]
    assert not missing, missing


def _is_submodule(package: str, name: str) -> bool:
    path = PACKAGE.joinpath(*package.split(".")[1:], name)
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_the_contributing_guide_shows_every_module_of_the_tree():
    """CONTRIBUTING.md's layout block names every subpackage and every module in it."""
    guide = (PACKAGE.parent / "CONTRIBUTING.md").read_text()
    block = guide[guide.index("```\ndatl_helpers/"): guide.index("data_scripts/   ")]
    missing = [m for m in import_graph() if m.count(".") <= 1 and m.split(".")[-1] not in block]  # claims/NAME: per notebook
    assert not missing, f"CONTRIBUTING.md's layout does not name {missing}"
    listed = {line.split()[0].rstrip("/") for line in block.splitlines()[2:] if line.startswith("  ") and line[2] != " "}
    assert listed - {"weights", "reference_results", "quizzes", "weights/,"} == set(LAYERS)
