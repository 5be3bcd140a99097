"""The two kinds of rule of DESIGN.md's room table that import-linter has no contract
type for, as custom contract types (``[tool.importlinter] contract_types`` in
pyproject.toml names them; ``lint-imports`` from the repository root imports this module,
so it needs no install).

* ``lazy_imports``: the ``source_modules`` import the ``lazy_modules`` only inside a
  function (or under ``if TYPE_CHECKING:``), never when they are imported themselves:
  ``hpo`` loads ``server`` for ``hpo server`` and ``worker`` for ``hpo worker``, and
  nothing of either for the client. import-linter's graph cannot tell a module-level
  import from a function-level one, so each import the graph records is located with
  ``ast`` in its module's source.
* ``allowed_externals``: the ``source_modules`` import, besides the project's own modules
  and the standard library, only the ``allowed_modules`` (``search`` may use numpy,
  scipy, scikit-learn and scikit-optimize; ``models`` torch, numpy and scikit-learn).
  Needs ``include_external_packages = true``.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output

__all__ = ["AllowedExternalsContract", "LazyImportsContract", "eager_import_lines"]


def _within(module: str, packages: list[str]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


def _modules_of(graph: ImportGraph, packages: list[str]) -> list[str]:
    """Every module of ``packages`` in the graph, sorted."""
    found: set[str] = set()
    for package in packages:
        found.add(package)
        found.update(graph.find_descendants(package))
    return sorted(found)


@cache
def _root_directory(root: str) -> Path:
    """Where top-level package ``root`` lives (found without importing it)."""
    spec = importlib.util.find_spec(root)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"cannot find package {root!r}")
    return Path(next(iter(spec.submodule_search_locations)))


def source_path(module: str) -> Path:
    """The source file of ``module`` (``a.b`` -> ``a/b.py`` or ``a/b/__init__.py``)."""
    root, *rest = module.split(".")
    base = _root_directory(root).joinpath(*rest)
    package = base / "__init__.py"
    return package if package.exists() else base.with_suffix(".py")


def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def eager_import_lines(source: str) -> set[int]:
    """Lines of the import statements that run when the module itself is imported:
    every import outside a function body and outside an ``if TYPE_CHECKING:`` block
    (class bodies, ``try`` and plain ``if`` blocks run at import time)."""
    lines: set[int] = set()

    def visit(nodes: Iterable[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                lines.add(node.lineno)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.orelse)  # the else branch does run
            else:
                visit(ast.iter_child_nodes(node))

    visit([ast.parse(source)])
    return lines


class LazyImportsContract(Contract):
    """``source_modules`` import ``lazy_modules`` only inside functions (see the module
    docstring). Direct imports only: an indirect chain goes through some module's own
    import, which is checked where it is written."""

    type_name = "lazy_imports"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    lazy_modules = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        sources = [m.name for m in self.source_modules]  # type: ignore[attr-defined]
        lazy = [m.name for m in self.lazy_modules]  # type: ignore[attr-defined]
        violations: list[Any] = []  # grimp's import details
        for importer in _modules_of(graph, sources):
            imported = sorted(
                m for m in graph.find_modules_directly_imported_by(importer) if _within(m, lazy)
            )
            if not imported:
                continue
            eager = eager_import_lines(source_path(importer).read_text(encoding="utf-8"))
            for target in imported:
                for detail in graph.get_import_details(importer=importer, imported=target):
                    output.verbose_print(verbose, f"{importer}:{detail['line_number']} {target}")
                    if detail["line_number"] in eager:
                        violations.append(detail)
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for v in check.metadata["violations"]:
            output.print_error(
                f"{v['importer']}:{v['line_number']} imports {v['imported']} when it is "
                f"imported itself (move it into the function that needs it): "
                f"{v['line_contents']}",
                bold=False,
            )
            output.new_line()


class AllowedExternalsContract(Contract):
    """``source_modules`` import no third-party package but ``allowed_modules`` (see the
    module docstring)."""

    type_name = "allowed_externals"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    allowed_modules = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        sources = [m.name for m in self.source_modules]  # type: ignore[attr-defined]
        allowed = {m.name for m in self.allowed_modules}  # type: ignore[attr-defined]
        allowed |= set(sys.stdlib_module_names)
        violations: list[Any] = []  # grimp's import details
        for importer in _modules_of(graph, sources):
            for target in sorted(graph.find_modules_directly_imported_by(importer)):
                # External packages are squashed into one node per top-level name.
                if graph.is_module_squashed(target) and target not in allowed:
                    violations.extend(graph.get_import_details(importer=importer, imported=target))
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for v in check.metadata["violations"]:
            output.print_error(
                f"{v['importer']}:{v['line_number']} imports {v['imported']}, which this "
                f"room may not use: {v['line_contents']}",
                bold=False,
            )
            output.new_line()
