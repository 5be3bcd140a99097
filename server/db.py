"""Engine and session factory: the only place that knows which database we talk to.

SQLite (the embedded default) gets WAL journaling and a busy timeout so that the API
threads and the scheduler thread of the one server process never surface
"database is locked" to a client; PostgreSQL needs nothing special.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Executable, Table, create_engine, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from server.caches import Caches

__all__ = ["Database", "changed_rows", "insert_ignore"]


class Database:
    """Owns one engine and its session factory. Its sessions carry ``caches`` (the
    app's, see :mod:`server.caches`; a database made on its own has its own) in
    ``session.info``."""

    def __init__(self, url: str, *, caches: Caches | None = None) -> None:
        self.url = url
        self.caches = caches if caches is not None else Caches()
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            _ping_when_idle(self.engine)
        self._sessions = sessionmaker(
            self.engine, expire_on_commit=False, info={"caches": self.caches}
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error, so a
        rejected request leaves nothing half-written."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


#: A pooled connection idle longer than this is pinged before use (see _ping_when_idle).
IDLE_PING_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use when it sat idle for a while.

    ``pool_pre_ping`` pings on every checkout: a round trip per request and per
    scheduling pass, a fifth of a pass on PostgreSQL. A connection handed back moments
    ago is alive; one idle for seconds may have been cut (database restart, idle
    timeout), so only those are pinged, and a dead one is replaced before the request
    sees it (``DisconnectionError`` makes the pool open a fresh connection).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as err:
            raise exc.DisconnectionError(f"stale pooled connection: {err}") from err
        if not alive:
            raise exc.DisconnectionError("stale pooled connection")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def changed_rows(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE in ``session``; how many rows it changed."""
    result = cast("CursorResult[Any]", session.execute(statement))
    return result.rowcount


def insert_ignore(session: Session, table: Table, values: dict, keys: list[str]) -> bool:
    """INSERT a row unless one with the same ``keys`` exists; True when inserted.

    One statement (``ON CONFLICT DO NOTHING``) on both SQLite and PostgreSQL, so two
    concurrent replays of the same row cannot race each other into an IntegrityError.
    """
    stmt: Executable
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    else:
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    return changed_rows(session, stmt) == 1
