"""HPO Service: the package users import (client, spec, settings) and the ``hpo`` command.

``from hpo import Client`` is the SDK entry point; it imports neither the server nor torch.
``import hpo`` alone imports nothing more: each name below loads its module on first
access, so ``hpo.settings`` (servers, workers) or the CLI do not pay for the client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time ``__getattr__`` below
    from hpo.client import APIError, Client, Conflict, InvalidRequest, NotFound, ServerUnavailable
    from hpo.spec import StudySpec

__all__ = [
    "APIError",
    "Client",
    "Conflict",
    "InvalidRequest",
    "NotFound",
    "ServerUnavailable",
    "StudySpec",
]
__version__ = "0.1.0"

#: Where each public name lives.
_EXPORTS: dict[str, str] = {
    "APIError": "hpo.client",
    "Client": "hpo.client",
    "Conflict": "hpo.client",
    "InvalidRequest": "hpo.client",
    "NotFound": "hpo.client",
    "ServerUnavailable": "hpo.client",
    "StudySpec": "hpo.spec",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hpo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
