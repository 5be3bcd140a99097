"""API tokens and scopes (fleet mode).

With no token configured the API is open (the embedded default on loopback). Once
``HPO_API_TOKEN`` or ``HPO_WORKER_TOKEN`` is set on the server, every ``/api/v1`` request
must present ``Authorization: Bearer <token>`` (or the dashboard's session cookie):
missing or unknown -> 401. The worker
token has the ``worker`` scope only: it may start, heartbeat, report, finish and release
trials and register workers, nothing else (-> 403). The API token has every scope.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status

__all__ = [
    "SESSION_COOKIE",
    "Scope",
    "UserScope",
    "WorkerScope",
    "auth_enabled",
    "require",
    "scopes_of",
]

#: Cookie holding the token after a dashboard login.
SESSION_COOKIE = "hpo_session"

Scope = Literal["user", "worker"]


def auth_enabled(request: Request) -> bool:
    """Whether the server requires tokens (any token configured)."""
    settings = request.app.state.settings
    return bool(settings.api_token or settings.worker_token)


def scopes_of(request: Request) -> set[str] | None:
    """The presented token's scopes (header, else the dashboard's session cookie);
    None when auth is off; 401 when a token is required and missing or unknown."""
    settings = request.app.state.settings
    tokens = {
        "user": settings.api_token,
        "worker": settings.worker_token,
    }
    if not any(tokens.values()):
        return None
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if not header:
        # The dashboard's session: the cookie set by its login page (HttpOnly and
        # SameSite=Strict, so another site's page cannot send it).
        scheme, presented = "bearer", request.cookies.get(SESSION_COOKIE, "")
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
        scopes = scopes_of(request)
        if scopes is not None and scope not in scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this token may not do this (needs scope {scope!r})"
            )

    return check


UserScope = Annotated[None, Depends(require("user"))]
WorkerScope = Annotated[None, Depends(require("worker"))]
