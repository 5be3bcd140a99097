"""Pages of a study's trials: by offset, or by keyset (an opaque cursor).

Both orders are the same: the sort key (nulls last either way), then number ascending.
An offset page skips ``offset`` index entries (at 100,000 trials, 10-15 ms deep into
the study); a cursor page starts right after the previous page's last row (its sort
key and number, carried in the cursor), an index range scan on the indexed keys
(number; value either way) however deep it is. Cursors are stable under inserts: a
trial added meanwhile is not returned twice and does not shift the pages.

A cursor is made for one ``(sort, order, status)``: reusing it with another is a 422
naming ``cursor``, as is one that does not decode. Clients must treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from server.errors import Invalid
from server.tables import Trial

__all__ = ["Position", "decode_cursor", "encode_cursor", "page_numbers", "sort_column"]

#: Sort keys whose column is NOT NULL.
NOT_NULL = frozenset({"number", "status", "attempt"})
_VERSION = 1
_MAX_NUMBER = 2**63 - 1


@dataclass(frozen=True)
class Position:
    """Where a page ends: the last row's sort key (None: null) and number."""

    key: Any
    number: int


def sort_column(session: Session, sort: str) -> Any:
    """The SQL expression of a ``TrialSortKey`` on the session's dialect."""
    if sort != "duration":
        return getattr(Trial, sort)
    if session.get_bind().dialect.name == "sqlite":
        return func.julianday(Trial.finished_at) - func.julianday(Trial.started_at)
    return Trial.finished_at - Trial.started_at


def encode_cursor(sort: str, descending: bool, status: str | None, at: Position) -> str:
    """The opaque cursor of the page that starts after ``at``."""
    key: Any = at.key
    if isinstance(key, datetime):
        key = {"t": key.isoformat()}
    elif isinstance(key, timedelta):
        key = {"d": [key.days, key.seconds, key.microseconds]}
    body = {"v": _VERSION, "s": sort, "o": "desc" if descending else "asc", "f": status}
    body |= {"k": key, "n": at.number}
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid(why: str) -> Invalid:
    return Invalid(f"cursor: {why}", field="cursor")


def decode_cursor(
    text: str, *, sort: str, descending: bool, status: str | None, dialect: str
) -> Position:
    """The position ``text`` encodes, checked against the request's sort, order and
    status filter; Invalid (422, field ``cursor``) when it is not one of ours or was
    made for another listing."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: "[[[[…"
        raise _invalid("not a cursor this server made") from None
    if not isinstance(body, dict) or body.get("v") != _VERSION:
        raise _invalid("not a cursor this server made")
    order = "desc" if descending else "asc"
    if (body.get("s"), body.get("o"), body.get("f")) != (sort, order, status):
        raise _invalid(
            f"made for sort={body.get('s')}, order={body.get('o')}, status={body.get('f')}; "
            f"this request has sort={sort}, order={order}, status={status}"
        )
    number = body.get("n")
    if type(number) is not int or not 0 <= number <= _MAX_NUMBER:
        raise _invalid("not a cursor this server made")
    return Position(_key(body.get("k"), sort, dialect), number)


def _key(raw: Any, sort: str, dialect: str) -> Any:
    """The sort key back in the type the column compares with (module doc: 422)."""
    if raw is None:
        if sort in NOT_NULL and sort != "number":
            raise _invalid(f"{sort} is never null")
        return None
    if sort == "number":
        return None  # the number is the key
    try:
        if sort == "value" and type(raw) in (int, float):
            return float(raw)
        if sort == "attempt" and type(raw) is int and abs(raw) <= _MAX_NUMBER:
            return raw
        if sort in ("status", "worker") and isinstance(raw, str) and len(raw) <= 256:
            return raw
        if sort == "started_at" and isinstance(raw, dict) and isinstance(raw.get("t"), str):
            return datetime.fromisoformat(raw["t"])
        if sort == "duration" and dialect == "sqlite" and type(raw) in (int, float):
            return float(raw)
        if sort == "duration" and dialect != "sqlite" and isinstance(raw, dict):
            days, seconds, micros = raw["d"]
            if all(type(x) is int for x in (days, seconds, micros)):
                return timedelta(days=days, seconds=seconds, microseconds=micros)
    except (ValueError, TypeError, KeyError, OverflowError):
        pass
    raise _invalid(f"its key does not fit sort={sort}")


def _order(column: Any, sort: str, descending: bool) -> list[Any]:
    # No null test on keys that are never null: it would keep the index from the order.
    order = [] if sort in NOT_NULL else [column.is_(None)]
    if sort == "number":
        return [column.desc() if descending else column.asc()]
    return [*order, column.desc() if descending else column.asc(), Trial.number]


def _after(column: Any, sort: str, descending: bool, at: Position) -> ColumnElement[bool]:
    """Rows after ``at`` in the order, among the non-null keys (``at.key`` not None)."""
    if sort == "number":
        return Trial.number < at.number if descending else Trial.number > at.number
    beyond = column < at.key if descending else column > at.key
    reach = column <= at.key if descending else column >= at.key
    # ``reach`` alone bounds the index range; the rest filters the ties at its start.
    clause = and_(reach, beyond | (Trial.number > at.number))
    if sort in NOT_NULL:
        return clause
    # "(key IS NULL) IS false" matches the value indexes' null-test column as written:
    # PostgreSQL turns "= false" or "NOT" into "key IS NOT NULL", which does not bound
    # that column, and the range would start at the study's first entry (~5 ms at 100k).
    return and_(column.is_(None).is_(False), clause)


def page_numbers(
    session: Session,
    where: list[Any],
    *,
    sort: str,
    descending: bool,
    limit: int,
    offset: int = 0,
    after: Position | None = None,
) -> list[tuple[int, Any]]:
    """Up to ``limit + 1`` ``(number, sort key)`` rows of trials matching ``where``, in
    page order: from ``offset`` or after the cursor position ``after`` (the extra row
    says whether another page follows)."""
    column = sort_column(session, sort)
    order = _order(column, sort, descending)
    query = select(Trial.number, column).where(*where).order_by(*order).limit(limit + 1)
    if after is None:
        return [tuple(r) for r in session.execute(query.offset(offset))]
    if after.key is None and sort != "number":  # in the nulls, the last part of the order
        nulls = query.where(column.is_(None), Trial.number > after.number)
        return [tuple(r) for r in session.execute(nulls)]
    rows = [tuple(r) for r in session.execute(query.where(_after(column, sort, descending, after)))]
    if len(rows) <= limit and sort not in NOT_NULL:  # the non-null keys ran out: the nulls
        nulls = query.where(column.is_(None)).limit(limit + 1 - len(rows))
        rows += [tuple(r) for r in session.execute(nulls)]
    return rows
