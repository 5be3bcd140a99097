"""Lazy package exports: a package's public names, each loaded from its module on first
access (PEP 562), so importing the package costs nothing until a name is used. Used by
``search`` (strategies pull in NumPy, SciPy and scikit-optimize) and ``hpo`` (the client
must stay light). Standard library only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose module globals are
    ``namespace``, for ``exports`` (public name -> the module defining it). A loaded name
    is stored in ``namespace``, so later lookups skip ``__getattr__``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
