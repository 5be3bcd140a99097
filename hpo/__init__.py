"""HPO Service: the package users import (client, spec, settings) and the ``hpo`` command.

``from hpo import Client`` is the SDK entry point; it imports neither the server nor torch.
``import hpo`` alone imports nothing more: each name below loads its module on first
access, so ``hpo.settings`` (servers, workers) or the CLI do not pay for the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports("hpo", globals(), _EXPORTS)
