"""The median stopping rule's in-memory cache of finished curves decides exactly as its
SQL reference (the aggregate over the reports) on the same data, on SQLite and on a
real PostgreSQL: from cold, after trials finish, after new trials arrive, either
direction, with several attempts, null values and gaps in the steps."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from hpo.embedded import EmbeddedService
from hpo.settings import Settings
from hpo.spec import StudySpec
from server import stopping
from server.db import Database
from server.studies import create_study
from server.tables import Report, Study, Trial

STEPS = 6


def _study(db: Database, make_spec, direction: str) -> int:
    spec = make_spec(f"median-{direction}", budget={"max_trials": 10_000, "max_parallel": 10})
    metric = "val_accuracy" if direction == "maximize" else "val_loss"
    spec["objective"] = {"metric": metric, "direction": direction}
    spec["stopping"] = {"rule": "median", "warmup_steps": 1, "min_trials": 3}
    with db.session() as session:
        return create_study(session, StudySpec.model_validate(spec)).id


def _add_trials(
    db: Database, study_id: int, first: int, n: int, rng: np.random.Generator
) -> list[int]:
    """``n`` trials numbered from ``first``: finished (completed or pruned), failed or
    running, each with reports of one or two attempts (some steps skipped, some values
    null); returns their ids."""
    statuses = rng.choice(
        ["completed", "pruned", "failed", "running"], size=n, p=[0.5, 0.2, 0.1, 0.2]
    )
    with db.session() as session:
        rows = [
            {"study_id": study_id, "number": first + i, "status": str(s), "params": {}, "info": {}}
            for i, s in enumerate(statuses)
        ]
        ids = list(
            session.scalars(insert(Trial).returning(Trial.id, sort_by_parameter_order=True), rows)
        )
        reports = []
        for trial_id in ids:
            for attempt in range(1, int(rng.integers(1, 3)) + 1):
                for step in range(1, int(rng.integers(1, STEPS + 1)) + 1):
                    if rng.random() < 0.15:
                        continue  # a step this attempt did not report
                    value = None if rng.random() < 0.05 else float(np.round(rng.random(), 2))
                    reports.append(
                        {"trial_id": trial_id, "attempt": attempt, "step": step, "value": value}
                    )
        session.execute(insert(Report), [{**r, "metrics": {}} for r in reports])
    return ids


def _check_all(db: Database, study_id: int, statuses: tuple[str, ...] = ("running",)) -> int:
    """Every trial in ``statuses`` (running: the ones that report) at every step: the
    cache's peers equal the query's, and so do the decisions; returns how many
    decisions said stop."""
    stops = 0
    with db.session() as session:
        study = session.get(Study, study_id)
        assert study is not None
        running = session.scalars(
            select(Trial).where(Trial.study_id == study_id, Trial.status.in_(statuses))
        ).all()
        assert running
        for trial in running:
            for step in range(1, STEPS + 2):
                cached = stopping.cached_peers(session, study, trial, step)
                assert cached is not None, "the cache answered (not the fallback)"
                reference = stopping.query_peers(session, study, trial, step)
                assert sorted(cached) == sorted(reference), (trial.number, step)
                with_cache = stopping.stopping_decision(session, study, trial, step)
                without = stopping.stopping_decision(session, study, trial, step, use_cache=False)
                assert with_cache == without, (trial.number, step)
                stops += with_cache is not None
    return stops


def _finish_some(session: Session, study_id: int, rng: np.random.Generator) -> None:
    running = session.scalars(
        select(Trial.id).where(Trial.study_id == study_id, Trial.status == "running")
    ).all()
    done = [int(i) for i in rng.choice(running, size=len(running) // 2, replace=False)]
    session.execute(update(Trial).where(Trial.id.in_(done)).values(status="completed", value=0.5))


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_cache_decides_as_the_sql_reference(db: Database, make_spec, direction: str) -> None:
    rng = np.random.default_rng(7)
    study_id = _study(db, make_spec, direction)
    _add_trials(db, study_id, 0, 60, rng)
    stops = _check_all(db, study_id)  # cold: the cache is built from the study
    # Trials finish and new ones arrive: the cache folds in the difference.
    with db.session() as session:
        _finish_some(session, study_id, rng)
    _add_trials(db, study_id, 60, 40, rng)
    stops += _check_all(db, study_id)
    # A new process (an empty cache) sees the same.
    db.caches.clear()
    stops += _check_all(db, study_id)
    assert stops > 0, "the data exercises stop decisions too"


def test_reporting_trial_counted_as_finished_falls_back(db: Database, make_spec) -> None:
    """A trial that is itself finished (a late report) is not the cache's to answer."""
    rng = np.random.default_rng(3)
    study_id = _study(db, make_spec, "maximize")
    _add_trials(db, study_id, 0, 20, rng)
    with db.session() as session:
        study = session.get(Study, study_id)
        done = session.scalars(
            select(Trial).where(Trial.study_id == study_id, Trial.status == "completed")
        ).first()
        assert study is not None and done is not None
        assert stopping.cached_peers(session, study, done, 2) is None


def _finished_ids(db: Database, study_id: int) -> set[int]:
    with db.session() as session:
        query = select(Trial.id).where(
            Trial.study_id == study_id, Trial.status.in_(stopping.FINISHED)
        )
        return set(session.scalars(query))


def test_server_start_up_builds_the_cache_before_any_report(
    db: Database, settings: Settings, make_spec, wait
) -> None:
    """A (re)started server builds a running median-rule study's cache in the
    background: it holds every finished trial's curve with no report made, and the
    decisions it then answers match the SQL reference."""
    study_id = _study(db, make_spec, "maximize")
    _add_trials(db, study_id, 0, 60, np.random.default_rng(11))
    finished = _finished_ids(db, study_id)
    assert finished

    with EmbeddedService(settings, workers=0) as service:
        served: Database = service.app.state.db  # its sessions carry the app's caches

        def built() -> bool:
            with served.session() as session:
                study = session.get(Study, study_id)
                assert study is not None
                return stopping.finished_curves(session, study).ids == finished

        wait(built)
        with served.session() as session:
            study = session.get(Study, study_id)
            other = session.scalars(
                select(Trial).where(Trial.study_id == study_id, Trial.id.not_in(finished))
            ).first()
            assert study is not None and other is not None
            curves = stopping.finished_curves(session, study)
            for step in range(1, STEPS + 2):
                reference = stopping.query_peers(session, study, other, step)
                assert sorted(curves.peers(step)) == sorted(reference), step
        # The server's reaper requeues the trials left running with no worker: every
        # open trial is checked, whichever status it has by now.
        assert _check_all(db, study_id, ("running", "queued", "failed")) > 0


def test_warm_up_picks_running_studies_with_a_rule_and_never_raises(
    db: Database, make_spec, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only running studies with a stopping rule are built; an empty database, a
    study deleted before its turn and a database without tables end the warm-up
    quietly (the last one logged), never with an exception."""
    empty = stopping.CacheWarmUp(db).start()
    assert empty.done.wait(30) and empty.warmed == []

    median = _study(db, make_spec, "maximize")
    paused = _study(db, make_spec, "minimize")
    with db.session() as session:
        create_study(session, StudySpec.model_validate(make_spec("no-rule")))
        session.execute(update(Study).where(Study.id == paused).values(status="paused"))
    warm_up = stopping.CacheWarmUp(db).start()
    assert warm_up.done.wait(30) and warm_up.warmed == [median]

    deleted = stopping.CacheWarmUp(db)
    deleted._warm(10**6)  # listed, then deleted before its turn: skipped
    assert deleted.warmed == []

    caplog.set_level(logging.WARNING, logger="server.stopping")
    no_tables = Database(f"sqlite:///{tmp_path / 'no-tables.db'}")
    try:
        broken = stopping.CacheWarmUp(no_tables).start()
        assert broken.done.wait(30) and broken.warmed == []
    finally:
        no_tables.dispose()
    assert "cannot list the running studies" in caplog.text
