"""HPO Service: the package users import (client, spec, settings) and the ``hpo`` command.

``from hpo import Client`` is the SDK entry point; it imports neither the server nor torch.
"""

from __future__ import annotations

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
