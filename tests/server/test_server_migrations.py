"""Alembic owns the schema: upgrade from empty, downgrade to base, and the migration
matches the tables the code declares."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from server.migrate import current_revision, downgrade, upgrade
from server.tables import Base


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_every_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'hpo.db'}"  # folder does not exist yet
    upgrade(url)
    assert {"studies", "trials", "reports"} <= _tables(url)
    assert current_revision(url) is not None


def test_downgrade_base_removes_every_table_and_upgrade_again_works(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    upgrade(url)
    downgrade(url, "base")
    assert _tables(url) <= {"alembic_version"}
    assert current_revision(url) is None
    upgrade(url)
    assert {"studies", "trials", "reports"} <= _tables(url)


def test_migrations_match_declared_tables(tmp_path: Path) -> None:
    """A table or column added to server/tables.py without a migration fails here."""
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
