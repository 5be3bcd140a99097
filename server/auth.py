"""Authentication: API tokens with scopes, from a header or the dashboard's cookie.

Auth is on when ``HPO_AUTH=on``, or with the default ``HPO_AUTH=auto`` when the server
binds to anything but loopback or a token is set in its environment; ``off`` opens the
API (loopback development only). With auth on, every request but ``/healthz``, the
login page and static assets must present ``Authorization: Bearer <token>`` (or the
dashboard's session cookie): missing or unknown -> 401, a scope too small -> 403.

Tokens: ``HPO_API_TOKEN`` (admin: the bootstrap token of an operator), ``HPO_WORKER_TOKEN``
(worker), and tokens created with ``POST /api/v1/tokens`` / ``hpo token create`` (stored
hashed, see ``server.tokens``). Scopes nest: admin > user > worker. Tokens are never
logged: they travel in headers and cookies only, and errors never echo them.

Each request acts as an :class:`Identity` (who it is: the user a token belongs to, and
the token's scopes), resolved once per request. What that identity may see and change
in which project is ``server.access``'s to decide.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from hpo.vocabulary import TokenScope
from server import tokens

__all__ = [
    "LOCAL",
    "SESSION_COOKIE",
    "Identity",
    "IdentityDep",
    "Scope",
    "UserScope",
    "WorkerScope",
    "auth_enabled",
    "auth_required",
    "current_identity",
    "fixed_identity",
    "identity_of",
    "presented_token",
    "require",
    "scopes_of",
    "token_identity",
    "token_scopes",
]

#: Cookie holding the token after a dashboard login.
SESSION_COOKIE = "hpo_session"

Scope = TokenScope


@dataclass(frozen=True)
class Identity:
    """Who a request acts as. ``name`` is what the audit trail and ``created_by``
    record: the user's name, or ``admin``, ``worker``, ``local`` (auth off) for
    tokens that are no user's. ``user_id`` is the user a stored token belongs to."""

    name: str
    scopes: frozenset[str]
    user_id: int | None = None

    @property
    def unrestricted(self) -> bool:
        """Whether project roles do not apply: an admin sees and does everything, and
        a worker's token (no user scope) runs the trials of every project."""
        return "admin" in self.scopes or "user" not in self.scopes


#: The identity of every request to a server with auth off: one person, every right.
LOCAL = Identity("local", tokens.expand("admin"))


def auth_required(mode: str, host: str, env_tokens: bool) -> bool:
    """Whether a server in auth ``mode`` (on | off | auto) bound to ``host`` requires
    tokens: ``auto`` means on beyond loopback, or when an environment token is set."""
    if mode in ("on", "off"):
        return mode == "on"
    return env_tokens or not _loopback(host)


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only "localhost" is known to be local
        return False


def auth_enabled(request: Request) -> bool:
    """Whether this server requires tokens (decided once, at start-up)."""
    return bool(request.app.state.auth_on)


def presented_token(request: Request) -> str | None:
    """The bearer token of the request, else the dashboard's session cookie."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, presented = header.partition(" ")
        return presented.strip() if scheme.lower() == "bearer" and presented.strip() else None
    # The dashboard's session: set by its login page (HttpOnly, SameSite=Strict, so
    # another site's page cannot send it).
    return request.cookies.get(SESSION_COOKIE) or None


def scopes_of(request: Request) -> frozenset[str] | None:
    """The presented token's scopes; None when auth is off; 401 when a token is
    required and missing or unknown."""
    if not auth_enabled(request):
        return None
    return identity_of(request).scopes


def fixed_identity(app: Any, presented: str) -> Identity | None:
    """The identity of ``presented`` when it is an environment token (or the embedded
    server's own), compared in constant time; None otherwise (no database access)."""
    if not presented:
        return None
    settings = app.state.settings
    for scope, token in (
        ("admin", settings.api_token),
        ("worker", settings.worker_token),
        ("worker", app.state.internal_token),
    ):
        if token and hmac.compare_digest(presented.encode(), token.encode()):
            return Identity(scope, tokens.expand(scope))
    return None


def token_identity(app: Any, presented: str) -> Identity | None:
    """Who ``presented`` is on ``app``, or None for an unknown token."""
    fixed = fixed_identity(app, presented)
    if fixed is not None:
        return fixed
    with app.state.db.session() as session:
        holder = tokens.lookup(session, presented)
    if holder is None:
        return None
    return Identity(holder.user or holder.scope, tokens.expand(holder.scope), holder.user_id)


def token_scopes(app: Any, presented: str) -> frozenset[str] | None:
    """What ``presented`` may do on ``app``, or None for an unknown token."""
    identity = token_identity(app, presented)
    return identity.scopes if identity is not None else None


def identity_of(request: Request) -> Identity:
    """Who the request acts as (:data:`LOCAL` with auth off), resolved once per request;
    401 when a token is required and missing or unknown."""
    cached = getattr(request.state, "identity", None)
    if cached is not None:
        return cached
    identity = LOCAL if not auth_enabled(request) else _presented_identity(request)
    request.state.identity = identity
    return identity


def _presented_identity(request: Request) -> Identity:
    presented = presented_token(request)
    if presented is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a token is required: send 'Authorization: Bearer <token>' (HPO_TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    identity = token_identity(request.app, presented)
    if identity is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown token", headers={"WWW-Authenticate": "Bearer"}
        )
    return identity


async def current_identity(request: Request) -> Identity:
    """The request's identity as a dependency: on the event loop for auth off and
    environment tokens (no worker-thread hop), in a worker thread when the token has to
    be looked up in the database."""
    cached = getattr(request.state, "identity", None)
    if cached is not None:
        return cached
    if not auth_enabled(request):
        request.state.identity = LOCAL
        return LOCAL
    fixed = fixed_identity(request.app, presented_token(request) or "")
    if fixed is not None:
        request.state.identity = fixed
        return fixed
    return await run_in_threadpool(identity_of, request)


def require(scope: Scope) -> Callable[[Request], Awaitable[None]]:
    """A dependency that admits requests whose token grants ``scope`` (or auth off)."""

    async def check(request: Request) -> None:
        if not auth_enabled(request):
            return
        identity = await current_identity(request)
        if scope not in identity.scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this token may not do this (needs scope {scope!r})"
            )

    return check


UserScope = Annotated[None, Depends(require("user"))]
WorkerScope = Annotated[None, Depends(require("worker"))]
IdentityDep = Annotated[Identity, Depends(current_identity)]
