"""Pooled PostgreSQL connections: pinged only after sitting idle, and a connection the
server cut meanwhile is replaced before a request sees it."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import server.db as server_db
from server.db import Database


@pytest.fixture
def pg_db(postgres_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(server_db, "IDLE_PING_SECONDS", 0.3)
    db = Database(postgres_url)
    pings: list[bool] = []
    real_ping = db.engine.dialect.do_ping

    def counting_ping(conn):  # type: ignore[no-untyped-def]
        pings.append(True)
        return real_ping(conn)

    monkeypatch.setattr(db.engine.dialect, "do_ping", counting_ping)
    yield db, pings
    db.dispose()


def _select(db: Database, value: int) -> int:
    with db.session() as session:
        return session.execute(text(f"SELECT {value}")).scalar_one()


def test_busy_connections_are_not_pinged(pg_db) -> None:
    db, pings = pg_db
    for i in range(20):
        assert _select(db, i) == i
    assert pings == []


def test_a_connection_cut_while_idle_is_replaced(pg_db, postgres_url: str) -> None:
    db, pings = pg_db
    assert _select(db, 1) == 1
    url = make_url(postgres_url)
    dsn = f"host={url.host} port={url.port} user={url.username} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as admin:  # like a database restart
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.database,),
        )
    time.sleep(0.5)
    assert _select(db, 2) == 2  # no error: the dead connection was swapped first
    assert pings  # it was checked because it sat idle
