"""The service fixtures start real Redis and PostgreSQL servers, isolate tests from each
other, and our Alembic migrations run on PostgreSQL."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis
import sqlalchemy as sa

if TYPE_CHECKING:  # imported by pytest as a plugin; importing it first defeats assert rewriting
    from service_fixtures import PostgresServer, RedisServer

# Also loaded from tests/conftest.py; naming it here keeps this file runnable on its own.

# ------------------------------------------------------------------------------- Redis


@pytest.fixture
def rclient(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def test_redis_set_get(rclient: redis.Redis, redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    rclient.set("greeting", "hello", ex=60)
    assert rclient.get("greeting") == "hello"
    rclient.rpush("queue", "a", "b")
    assert rclient.lrange("queue", 0, -1) == ["a", "b"]


@pytest.mark.parametrize("run", [1, 2])
def test_redis_is_empty_for_every_test(redis_url: str, run: int) -> None:
    # Whichever run comes second finds the other's keys gone: FLUSHALL empties every
    # logical database (here 0 and 1) before each test.
    for url in (redis_url, redis_url.rsplit("/", 1)[0] + "/1"):
        client = redis.Redis.from_url(url)
        try:
            assert client.dbsize() == 0, url
            client.set(f"leftover-{run}", "x")
        finally:
            client.close()


def test_redis_restart_keeps_port(redis_server: RedisServer, redis_url: str) -> None:
    port = redis_server.port
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.set("k", "v")
        redis_server.stop()
        assert not redis_server.running
        with pytest.raises(redis.ConnectionError):
            client.ping()
        redis_server.start()
        assert redis_server.port == port
        assert redis_server.url == redis_url
        # Same URL, new process, nothing persisted; the old client reconnects by itself.
        assert client.ping()
        assert client.get("k") is None
    finally:
        client.close()
        redis_server.start()  # leave it running for the next tests either way


# -------------------------------------------------------------------------- PostgreSQL

_seen_pg: list[str] = []


def test_postgres_table_roundtrip(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sa.create_engine(postgres_url)
    try:
        meta = sa.MetaData()
        things = sa.Table(
            "things",
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(32), nullable=False),
            sa.Column("data", sa.JSON),
        )
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                things.insert(),
                [{"name": "a", "data": {"x": 1}}, {"name": "é", "data": [1, "two"]}],
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.select(things.c.name, things.c.data).order_by("id")).all()
            assert [tuple(r) for r in rows] == [("a", {"x": 1}), ("é", [1, "two"])]
            assert conn.execute(sa.text("SHOW server_encoding")).scalar() == "UTF8"
            assert conn.execute(sa.text("SELECT current_user")).scalar() == "postgres"
    finally:
        engine.dispose()


@pytest.mark.parametrize("run", [1, 2])
def test_postgres_each_test_gets_its_own_empty_database(postgres_url: str, run: int) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            name = conn.execute(sa.text("SELECT current_database()")).scalar()
            assert name is not None
            assert sa.inspect(conn).get_table_names() == []
            conn.execute(sa.text("CREATE TABLE marker (id int)"))
    finally:
        engine.dispose()  # a leftover open connection would be terminated by the drop anyway
    assert name not in _seen_pg
    _seen_pg.append(name)


def test_postgres_database_is_dropped_even_with_open_connections(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database("fixture_drop_check")
    engine = sa.create_engine(url)
    conn = engine.connect()  # deliberately left open across the drop
    try:
        postgres_server.drop_database("fixture_drop_check")
        admin = sa.create_engine(postgres_server.admin_url())
        try:
            with admin.connect() as c:
                names = c.execute(sa.text("SELECT datname FROM pg_database")).scalars().all()
        finally:
            admin.dispose()
        assert "fixture_drop_check" not in names
    finally:
        conn.invalidate()
        engine.dispose()


def test_postgres_database_from_a_template_is_an_independent_copy(
    postgres_server: PostgresServer,
) -> None:
    template = postgres_server.create_database("fixture_template_check")
    copy = None
    try:
        engine = sa.create_engine(template)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE marker (id int)"))
            conn.execute(sa.text("INSERT INTO marker VALUES (1)"))
        engine.dispose()  # a template must have no open connection
        copy = postgres_server.create_database(
            "fixture_template_copy", template="fixture_template_check"
        )
        engine = sa.create_engine(copy)
        try:
            with engine.begin() as conn:
                assert conn.execute(sa.text("SELECT id FROM marker")).scalars().all() == [1]
                conn.execute(sa.text("INSERT INTO marker VALUES (2)"))
        finally:
            engine.dispose()
        engine = sa.create_engine(template)
        try:
            with engine.connect() as conn:  # the copy's writes stay in the copy
                assert conn.execute(sa.text("SELECT id FROM marker")).scalars().all() == [1]
        finally:
            engine.dispose()
    finally:
        if copy is not None:
            postgres_server.drop_database("fixture_template_copy")
        postgres_server.drop_database("fixture_template_check")


def _proc_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])  # real uid
    raise AssertionError(f"no Uid line for pid {pid}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_postgres_runs_as_postgres_user_when_we_are_root(postgres_server: PostgresServer) -> None:
    uid = _proc_uid(postgres_server.pid)
    if os.geteuid() == 0:
        assert uid == pwd.getpwnam("postgres").pw_uid
        assert uid != 0
        assert postgres_server.run_as == "postgres"
    else:
        assert uid == os.geteuid()
        assert postgres_server.run_as is None


# ---------------------------------------------------------------- migrations on PostgreSQL

OUR_TABLES = {"studies", "trials", "reports"}


def _head() -> str:
    from alembic.script import ScriptDirectory

    from server.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_upgrade_and_downgrade_on_postgres(postgres_url: str) -> None:
    from server.migrate import current_revision, downgrade, upgrade

    assert current_revision(postgres_url) is None
    upgrade(postgres_url)
    assert current_revision(postgres_url) == _head()
    assert _tables(postgres_url) >= OUR_TABLES | {"alembic_version"}

    downgrade(postgres_url, "base")
    assert current_revision(postgres_url) is None
    assert _tables(postgres_url) & OUR_TABLES == set()

    upgrade(postgres_url)  # and back up again: downgrade left nothing behind that collides
    assert current_revision(postgres_url) == _head()
    assert _tables(postgres_url) >= OUR_TABLES


def test_migrated_postgres_schema_matches_server_tables(postgres_url: str) -> None:
    """Alembic's autogenerate finds no difference between the migrated PostgreSQL schema
    and ``server.tables`` (a table change without its migration fails here)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from server.migrate import upgrade
    from server.tables import Base

    upgrade(postgres_url)
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"server.tables and migrations/ disagree on PostgreSQL: {diff}"
