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
    upgrade(database_url, "0005")
    assert current_revision(database_url) == "0005"
    upgrade(database_url)  # the service of today reads it
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


def test_0006_moves_todays_data_into_a_default_project_and_keeps_every_token_working(
    database_url: str,
) -> None:
    """A database made by the previous release (at 0005: a study with its own
    entrypoint, a trial, user, admin and worker tokens) upgrades to 0006 with the study
    in the ``default`` project, its entrypoint's module allowed there, each user token
    a member of it and each admin token a user; on SQLite and PostgreSQL. New rows get
    fresh ids after the migration's own (PostgreSQL's sequences moved on)."""
    from datetime import datetime, timezone

    from sqlalchemy import text

    from hpo.spec import StudySpec
    from server import access, projects, tokens
    from server.auth import Identity
    from server.db import Database
    from server.studies import create_study, get_study, study_public

    upgrade(database_url, "0005")
    engine = create_engine(database_url)
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    spec = (
        '{"name": "old", "objective": {"metric": "loss", "direction": "minimize"},'
        ' "space": {"lr": {"type": "float", "low": 0.001, "high": 0.1}},'
        ' "strategy": {"name": "random", "seed": 1, "options": {}},'
        ' "budget": {"max_trials": 2, "max_parallel": 1, "epochs": 1},'
        ' "train": {"model": "mlp", "dataset": "synthetic", "params": {},'
        ' "entrypoint": "team.train:fit"}}'
    )
    plain = {"alice": "hpo_alice", "root": "hpo_root", "box": "hpo_box"}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO studies (id, name, status, strategy, direction, metric, seed,"
                " max_trials, max_parallel, max_retries, trial_timeout, spec, runner,"
                " created_at, updated_at) VALUES (1, 'old', 'running', 'random', 'minimize',"
                " 'loss', 1, 2, 1, 2, 86400, :spec, 'workers', :now, :now)"
            ),
            {"spec": spec, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO trials (id, study_id, number, status, params, info, value,"
                " attempt, failures, created_at, finished_at) VALUES (1, 1, 0,"
                " 'completed', '{\"lr\": 0.01}', '{}', 0.25, 1, 0, :now, :now)"
            ),
            {"now": now},
        )
        for name, scope in (("alice", "user"), ("root", "admin"), ("box", "worker")):
            conn.execute(
                text(
                    "INSERT INTO tokens (name, scope, digest, created_at) VALUES (:n, :s, :d, :now)"
                ),
                {"n": name, "s": scope, "d": tokens.digest(plain[name]), "now": now},
            )
        if conn.dialect.name == "postgresql":  # as the previous release's own inserts leave them
            for table in ("studies", "trials"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1)"))
    engine.dispose()
    upgrade(database_url)  # to head: the service of today reads it
    db = Database(database_url)
    try:
        with db.session() as session:
            study = get_study(session, "old")
            public = study_public(session, study)
            assert public.project == "default" and public.best_trial.value == 0.25
            default = projects.get_project(session, "default")
            assert default.entrypoints == ["team.train"]
            assert projects.entrypoint_allowed(default, "team.train:fit")
            assert not projects.entrypoint_allowed(default, "other.train:fit")
            members = {user: role for user, role, _ in projects.list_members(session, default)}
            assert members == {"alice": "member"}
            alice = tokens.lookup(session, plain["alice"])
            root = tokens.lookup(session, plain["root"])
            box = tokens.lookup(session, plain["box"])
            assert alice is not None and (alice.scope, alice.user) == ("user", "alice")
            assert root is not None and (root.scope, root.user) == ("admin", "root")
            assert box is not None and (box.scope, box.user_id) == ("worker", None)
            who = Identity("alice", tokens.expand("user"), alice.user_id)
            assert access.get_study(session, who, "old").id == study.id
            assert access.visible_projects(session, who) == {default.id}
            # New rows after the migration's explicit ids: no key collisions.
            other = projects.create_project(session, "vision")
            assert other.id != default.id
            spec_new = StudySpec.model_validate(
                {"name": "new", "space": {"lr": {"type": "float", "low": 0.1, "high": 1}}}
            )
            assert create_study(session, spec_new, project_id=other.id).id != study.id
            created, _ = tokens.create_token(session, "bob", "user")
            assert created.user_id not in (alice.user_id, root.user_id)
    finally:
        db.dispose()
    downgrade(database_url, "0005")  # and back: the previous release reads it again
    assert current_revision(database_url) == "0005"
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM studies")).scalar() == 2
            assert conn.execute(text("SELECT count(*) FROM tokens")).scalar() == 4
    finally:
        engine.dispose()


def test_0009_puts_todays_studies_and_workers_in_the_default_pool(database_url: str) -> None:
    """A database of the previous release (at 0008: a running study, a registered
    worker) upgrades to 0009 with the study in pool ``default`` at weight 1 taking one
    slot per trial, and the worker in ``default``; the service reads both, and the
    downgrade gives the previous release its database back; on SQLite and PostgreSQL."""
    from datetime import datetime, timezone

    from sqlalchemy import text

    from server.db import Database
    from server.studies import get_study, study_public
    from server.workers import list_workers

    upgrade(database_url, "0008")
    engine = create_engine(database_url)
    now = datetime.now(timezone.utc)
    spec = (
        '{"name": "old", "objective": {"metric": "loss", "direction": "minimize"},'
        ' "space": {"lr": {"type": "float", "low": 0.001, "high": 0.1}},'
        ' "strategy": {"name": "random", "seed": 1, "options": {}},'
        ' "budget": {"max_trials": 2, "max_parallel": 1, "epochs": 1},'
        ' "train": {"model": "mlp", "dataset": "synthetic", "params": {}}}'
    )
    with engine.begin() as conn:
        project = conn.execute(text("SELECT id FROM projects WHERE name = 'default'")).scalar()
        conn.execute(
            text(
                "INSERT INTO studies (name, project_id, status, strategy, direction, metric,"
                " seed, max_trials, max_parallel, max_retries, trial_timeout, spec, runner,"
                " created_at, updated_at) VALUES ('old', :p, 'running', 'random', 'minimize',"
                " 'loss', 1, 2, 1, 2, 86400, :spec, 'workers', :now, :now)"
            ),
            {"p": project, "spec": spec, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO workers (name, host, pid, devices, status, started_at, heartbeat_at)"
                " VALUES ('box:1', 'box', 1, '[\"0\"]', 'idle', :now, :now)"
            ),
            {"now": now},
        )
    engine.dispose()
    upgrade(database_url, "0009")
    assert current_revision(database_url) == "0009"
    upgrade(database_url)
    db = Database(database_url)
    try:
        with db.session() as session:
            study = get_study(session, "old")
            assert (study.pool, study.priority, study.gpus) == ("default", 1.0, None)
            assert study_public(session, study).pool == "default"
            (worker,) = list_workers(session, heartbeat_timeout=60)
            assert (worker.name, worker.pool) == ("box:1", "default")
    finally:
        db.dispose()
    downgrade(database_url, "0008")
    assert current_revision(database_url) == "0008"
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM studies")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM workers")).scalar() == 1
    finally:
        engine.dispose()
