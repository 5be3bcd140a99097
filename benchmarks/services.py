"""Real PostgreSQL and Redis for the benchmarks that need them.

A benchmark takes ``--database-url`` / ``--redis-url`` when the user has servers of their
own; without them it starts throw-away ones on free loopback ports with the same code
the test fixtures use (``tests/service_fixtures.py``: ``initdb``/``pg_ctl`` run as the
``postgres`` user when we are root, ``redis-server`` without persistence), and removes
them at the end. The throw-away PostgreSQL runs with durability off (no fsync), like the
tests; pass a URL to measure a durable server.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "postgres_database",
    "redis_server",
    "redis_server_url",
    "service_pids",
    "sibling_database",
]

#: The throw-away servers running now (their main process ids), for CPU accounting.
_RUNNING: dict[str, int] = {}


def service_pids() -> list[int]:
    """Main process ids of the throw-away PostgreSQL and Redis servers running now
    (none for servers given by URL: those are not ours to measure)."""
    return list(_RUNNING.values())


_TESTS = Path(__file__).resolve().parents[1] / "tests"


def _fixtures():  # type: ignore[no-untyped-def]
    if str(_TESTS) not in sys.path:
        sys.path.insert(0, str(_TESTS))
    import service_fixtures

    return service_fixtures


@contextlib.contextmanager
def postgres_database(url: str | None = None) -> Iterator[str]:
    """Yield a SQLAlchemy URL of an empty PostgreSQL database: ``url`` itself when given,
    else a fresh database on a throw-away server (dropped with the server at the end)."""
    if url:
        yield url
        return
    with _fixtures().running_postgres() as server:
        _RUNNING["postgres"] = server.pid
        try:
            yield server.create_database(f"bench_{uuid.uuid4().hex[:10]}")
        finally:
            _RUNNING.pop("postgres", None)


@contextlib.contextmanager
def redis_server() -> Iterator[Any]:
    """Yield a throw-away ``redis-server`` (``service_fixtures.RedisServer``: its ``url``,
    ``pid``, and what a soak needs to stop and restart it on its port)."""
    with _fixtures().running_redis() as server:
        if server.pid is not None:
            _RUNNING["redis"] = server.pid
        try:
            yield server
        finally:
            _RUNNING.pop("redis", None)


@contextlib.contextmanager
def redis_server_url(url: str | None = None) -> Iterator[str]:
    """Yield a Redis URL: ``url`` when given, else a throw-away ``redis-server``'s."""
    if url:
        yield url
        return
    with redis_server() as server:
        yield server.url


@contextlib.contextmanager
def sibling_database(url: str, suffix: str = "peer") -> Iterator[str]:
    """A new empty database ``<name>_<suffix>`` on ``url``'s server (for a peer that must
    not share our tables), dropped at the end."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = f"{parsed.database}_{suffix}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    drop = text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with admin.connect() as conn:
        conn.execute(drop)
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(drop)
        admin.dispose()
