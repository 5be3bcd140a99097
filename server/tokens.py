"""API tokens: created with a scope, stored as SHA-256 digests, looked up per request.

A token is ``hpo_`` + 32 random bytes (URL-safe base64); only its digest is stored, so
a database leak reveals no usable token. Scopes nest: ``admin`` (everything, token
management) includes ``user`` (studies and trials), which includes ``worker`` (start,
heartbeat, report, finish, release a trial; register a worker).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import NamedTuple, get_args

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hpo.vocabulary import TokenScope
from server.db import changed_rows
from server.errors import Conflict, Invalid, NotFound
from server.tables import Token, User, utcnow
from server.users import ensure_user

__all__ = [
    "SCOPES",
    "Holder",
    "create_token",
    "delete_token",
    "digest",
    "expand",
    "list_tokens",
    "lookup",
]

SCOPES: tuple[TokenScope, ...] = get_args(TokenScope)
#: What each scope may do: a scope includes the ones after it.
_EXPANDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "admin": frozenset({"admin", "user", "worker"}),
        "user": frozenset({"user", "worker"}),
        "worker": frozenset({"worker"}),
    }
)
#: ``last_used_at`` is written at most this often per token (not one write per request).
TOUCH_EVERY = timedelta(minutes=1)


def digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def expand(scope: str) -> frozenset[str]:
    """Every scope ``scope`` grants."""
    return _EXPANDS.get(scope, frozenset())


class Holder(NamedTuple):
    """Whose a presented token is: its scope, and the user it belongs to (None for a
    worker token)."""

    scope: str
    user_id: int | None
    user: str | None


def create_token(
    session: Session, name: str, scope: str, user: str | None = None
) -> tuple[Token, str]:
    """Store a new token; returns the row and the plain token (shown once). A user or
    admin token belongs to ``user`` (default: a user named like the token), who is
    created when new; a worker token belongs to no one. A duplicate name is a Conflict
    naming ``name``."""
    if session.get(Token, name) is not None:
        raise Conflict(f"name: a token named {name!r} already exists", field="name")
    owner: User | None = None
    if scope == "worker":
        if user is not None:
            raise Invalid("user: a worker token belongs to no user", field="user")
    else:
        owner = ensure_user(session, user or name)
    plain = "hpo_" + secrets.token_urlsafe(32)
    row = Token(
        name=name,
        scope=scope,
        digest=digest(plain),
        created_at=utcnow(),
        user_id=owner.id if owner else None,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # a concurrent create with the same name
        raise Conflict(f"name: a token named {name!r} already exists", field="name") from None
    return row, plain


def list_tokens(session: Session) -> list[tuple[Token, str | None]]:
    """Every token with the name of its user (None for worker tokens), by name."""
    rows = session.execute(
        select(Token, User.name).outerjoin(User, User.id == Token.user_id).order_by(Token.name)
    ).all()
    return [(token, user) for token, user in rows]


def delete_token(session: Session, name: str) -> None:
    if changed_rows(session, delete(Token).where(Token.name == name)) != 1:
        raise NotFound(f"no token named {name!r}")


def lookup(session: Session, presented: str) -> Holder | None:
    """Whose a presented token is, or None when no stored token matches. Looking up by
    digest compares digests, not secrets, so timing reveals nothing useful."""
    found = session.execute(
        select(Token, User.name)
        .outerjoin(User, User.id == Token.user_id)
        .where(Token.digest == digest(presented))
    ).first()
    if found is None:
        return None
    row, user = found
    now = utcnow()
    last = row.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=now.tzinfo)
    if last is None or now - last > TOUCH_EVERY:
        session.execute(update(Token).where(Token.name == row.name).values(last_used_at=now))
    return Holder(row.scope, row.user_id, user)
