"""Users: the people tokens belong to. A user is made when a token names one; projects
list users as members (``server.projects``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.errors import Invalid
from server.tables import User

__all__ = ["ensure_user", "find_user"]


def find_user(session: Session, name: str) -> User:
    """The user named ``name``; Invalid naming ``user`` when there is none (users come
    from tokens: ``hpo token create NAME --user USER``)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise Invalid(
            f"user: no user named {name!r} (a user exists once a token names them: "
            f"hpo token create --user {name})",
            field="user",
        )
    return user


def ensure_user(session: Session, name: str) -> User:
    """The user named ``name``, created when new (a concurrent create of the same name
    is read back, not an error)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is not None:
        return user
    user = User(name=name)
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        return session.scalars(select(User).where(User.name == name)).one()
    return user
