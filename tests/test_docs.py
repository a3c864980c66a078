"""Every configuration dataclass of the helper library says what it configures."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "datl_helpers"


def _is_dataclass(node: ast.ClassDef) -> bool:
    names = {getattr(d, "id", None) or getattr(getattr(d, "func", None), "id", None) for d in node.decorator_list}
    return "dataclass" in names


def test_every_dataclass_has_a_docstring():
    undocumented = [f"{path.relative_to(PACKAGE)}: {node.name}" for path in PACKAGE.rglob("*.py")
                    for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.ClassDef) and _is_dataclass(node) and not ast.get_docstring(node)]
    assert not undocumented, undocumented
