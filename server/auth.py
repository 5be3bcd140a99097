"""API tokens and scopes (fleet mode).

With no token configured the API is open (the embedded default on loopback). Once
``HPO_API_TOKEN`` or ``HPO_WORKER_TOKEN`` is set on the server, every ``/api/v1`` request
must present ``Authorization: Bearer <token>``: missing or unknown -> 401. The worker
token has the ``worker`` scope only: it may start, heartbeat, report, finish and release
trials and register workers, nothing else (-> 403). The API token has every scope.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status

__all__ = ["Scope", "UserScope", "WorkerScope", "require"]

Scope = Literal["user", "worker"]


def _scopes_of(request: Request) -> set[str] | None:
    """The presented token's scopes; None when auth is off."""
    settings = request.app.state.settings
    tokens = {
        "user": settings.api_token,
        "worker": settings.worker_token,
    }
    if not any(tokens.values()):
        return None
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a token is required: send 'Authorization: Bearer <token>' (HPO_TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Compare against every configured token in constant time.
    matched = {
        scope
        for scope, token in tokens.items()
        if token and hmac.compare_digest(presented.encode(), token.encode())
    }
    if "user" in matched:
        return {"user", "worker"}
    if matched:
        return matched
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, "unknown token", headers={"WWW-Authenticate": "Bearer"}
    )


def require(scope: Scope):  # type: ignore[no-untyped-def]
    """A dependency that admits requests whose token has ``scope`` (or auth is off)."""

    def check(request: Request) -> None:
        scopes = _scopes_of(request)
        if scopes is not None and scope not in scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this token may not do this (needs scope {scope!r})"
            )

    return check


UserScope = Annotated[None, Depends(require("user"))]
WorkerScope = Annotated[None, Depends(require("worker"))]
