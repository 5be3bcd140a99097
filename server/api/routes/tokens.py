"""Token routes (admin scope): create (the plain token is in this answer only), list,
delete. A user or admin token belongs to a user, made when the token first names them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from hpo.schemas import TokenCreated, TokenIn, TokenPublic
from server import tokens
from server.api.deps import SessionDep
from server.auth import require

router = APIRouter(prefix="/tokens", tags=["tokens"], dependencies=[Depends(require("admin"))])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TokenCreated)
def create_token(body: TokenIn, session: SessionDep) -> TokenCreated:
    """Create a token with a scope; the answer holds the token, which is never shown
    again (only its SHA-256 digest is stored). 409 on a duplicate name."""
    row, plain = tokens.create_token(session, body.name, body.scope, body.user)
    user = None if row.user_id is None else (body.user or body.name)
    out = TokenCreated(
        name=row.name, scope=row.scope, user=user, token=plain, created_at=row.created_at
    )
    session.commit()
    return out


@router.get("", response_model=list[TokenPublic])
def list_tokens(session: SessionDep) -> list[TokenPublic]:
    """Every token's name, scope, user and use times (never the token)."""
    return [
        TokenPublic(
            name=t.name,
            scope=t.scope,
            user=user,
            created_at=t.created_at,
            last_used_at=t.last_used_at,
        )
        for t, user in tokens.list_tokens(session)
    ]


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_token(name: str, session: SessionDep) -> Response:
    """Revoke a token at once."""
    tokens.delete_token(session, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
