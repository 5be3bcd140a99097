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


def test_0005_keeps_a_previous_release_database_and_its_studies_run_as_before(
    database_url: str,
) -> None:
    """A database made by the previous release (at 0004, with a study, trials and
    reports in it) upgrades to 0005 with everything kept: the study is run by workers
    as before, has no failure reason, and the service reads it; on SQLite and
    PostgreSQL."""
    from datetime import datetime, timezone

    from sqlalchemy import text

    from server.db import Database
    from server.studies import get_study, study_public

    upgrade(database_url, "0004")
    engine = create_engine(database_url)
    now = datetime(2026, 11, 30, tzinfo=timezone.utc)
    spec = (
        '{"name": "old", "objective": {"metric": "val_accuracy", "direction": "maximize"},'
        ' "space": {"lr": {"type": "float", "low": 0.001, "high": 0.1}},'
        ' "strategy": {"name": "random", "seed": 1, "options": {}},'
        ' "budget": {"max_trials": 2, "max_parallel": 1, "epochs": 1},'
        ' "train": {"model": "mlp", "dataset": "synthetic", "params": {}}}'
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO studies (id, name, status, strategy, direction, metric, seed,"
                " max_trials, max_parallel, max_retries, trial_timeout, spec, created_at,"
                " updated_at) VALUES (1, 'old', 'completed', 'random', 'maximize',"
                " 'val_accuracy', 1, 2, 1, 2, 86400, :spec, :now, :now)"
            ),
            {"spec": spec, "now": now},
        )
        for number, value in ((0, 0.5), (1, 0.75)):
            conn.execute(
                text(
                    "INSERT INTO trials (id, study_id, number, status, params, info, value,"
                    " attempt, failures, created_at, finished_at) VALUES (:id, 1, :n,"
                    " 'completed', '{\"lr\": 0.01}', '{}', :v, 1, 0, :now, :now)"
                ),
                {"id": number + 1, "n": number, "v": value, "now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO reports (trial_id, attempt, step, value, metrics, created_at)"
                    " VALUES (:id, 1, 1, :v, '{}', :now)"
                ),
                {"id": number + 1, "v": value, "now": now},
            )
    engine.dispose()
    upgrade(database_url)
    assert current_revision(database_url) == "0005"
    db = Database(database_url)
    try:
        with db.session() as session:
            study = get_study(session, "old")
            assert (study.runner, study.reason, study.status) == ("workers", None, "completed")
            public = study_public(session, study)
            assert public.n_trials == 2 and public.best_trial.value == 0.75
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM reports")).scalar() == 2
    finally:
        db.dispose()
    downgrade(database_url, "0004")  # and back: the previous release reads it again
    assert current_revision(database_url) == "0004"
