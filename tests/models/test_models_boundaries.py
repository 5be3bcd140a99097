"""The models/ room keeps its contracts with the rest of the project.

- It registers exactly the names ``hpo.catalog`` advertises (the server validates specs
  against the catalog without importing torch, so the two must not drift).
- It imports only torch, numpy, scikit-learn and the standard library.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import models
from hpo.catalog import BUILTIN_DATASETS, BUILTIN_MODELS
from models import dataset_names, model_names

MODELS_DIR = Path(models.__file__).parent
ALLOWED_THIRD_PARTY = {"torch", "numpy", "sklearn", "models"}


def test_registries_match_the_catalog() -> None:
    assert model_names() == sorted(BUILTIN_MODELS)
    assert dataset_names() == sorted(BUILTIN_DATASETS)


def test_models_imports_only_allowed_packages() -> None:
    stdlib = set(sys.stdlib_module_names)
    offenders: list[str] = []
    for path in sorted(MODELS_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            offenders += [
                f"{path.name}: {root}"
                for root in roots
                if root not in stdlib and root not in ALLOWED_THIRD_PARTY
            ]
    assert offenders == []


def test_every_module_starts_with_future_annotations() -> None:
    for path in sorted(MODELS_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        body = [n for n in tree.body if not isinstance(n, ast.Expr)]  # skip the docstring
        first = body[0]
        assert isinstance(first, ast.ImportFrom) and first.module == "__future__", path.name


def test_public_names_are_exported() -> None:
    for name in models.__all__:
        assert hasattr(models, name), name
