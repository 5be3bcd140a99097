"""search/ is pure computation: it may import only numpy, scipy, scikit-learn,
scikit-optimize and the standard library (see DESIGN.md, "Rooms")."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SEARCH_DIR = Path(__file__).resolve().parents[2] / "search"
ALLOWED_THIRD_PARTY = {"numpy", "scipy", "sklearn", "skopt", "search"}
MODULES = sorted(SEARCH_DIR.rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_modules_found() -> None:
    assert len(MODULES) >= 6


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_only_allowed_imports(path: Path) -> None:
    roots = imported_roots(path)
    forbidden = roots - ALLOWED_THIRD_PARTY - set(sys.stdlib_module_names)
    assert not forbidden, f"{path.name} imports {sorted(forbidden)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_future_annotations_first(path: Path) -> None:
    body = ast.parse(path.read_text(encoding="utf-8")).body
    statements = [
        n for n in body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
    ]
    if not statements:  # an empty __init__.py
        return
    first = statements[0]
    assert isinstance(first, ast.ImportFrom) and first.module == "__future__", path.name
