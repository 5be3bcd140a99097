"""The scheduler keeps max_parallel trials in flight until the budget is spent, completes
studies, and re-enqueues what the database holds as queued after a restart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from hpo.spec import StudySpec
from server.db import Database
from server.migrate import upgrade
from server.queue import NullQueue
from server.scheduler import Scheduler
from server.studies import create_study
from server.tables import Study, Trial


class OwningQueue(NullQueue):
    owns_workers = True


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def _create(db: Database, spec: dict) -> int:
    with db.session() as session:
        return create_study(session, StudySpec.model_validate(spec)).id


def _trials(db: Database, study_id: int) -> Sequence[Trial]:
    with db.session() as session:
        return session.scalars(
            select(Trial).where(Trial.study_id == study_id).order_by(Trial.number)
        ).all()


def _finish_all_running_or_queued(db: Database, study_id: int, value: float = 0.5) -> None:
    with db.session() as session:
        for trial in session.scalars(select(Trial).where(Trial.study_id == study_id)):
            if trial.status in ("queued", "running"):
                trial.status, trial.value = "completed", value


def _study_status(db: Database, study_id: int) -> str:
    with db.session() as session:
        return session.get(Study, study_id).status


def test_keeps_max_parallel_in_flight_until_budget_then_completes(db, make_spec) -> None:
    queue = NullQueue()
    scheduler = Scheduler(db, queue)
    sid = _create(db, make_spec("p", budget={"max_trials": 5, "max_parallel": 2, "epochs": 1}))

    assert scheduler.run_once() == 2
    assert scheduler.run_once() == 0  # still 2 in flight
    assert len(_trials(db, sid)) == 2
    _finish_all_running_or_queued(db, sid)
    assert scheduler.run_once() == 2
    _finish_all_running_or_queued(db, sid)
    assert scheduler.run_once() == 1  # budget: 5 trials in all
    assert _study_status(db, sid) == "running"
    _finish_all_running_or_queued(db, sid)
    assert scheduler.run_once() == 0
    assert _study_status(db, sid) == "completed"
    trials = _trials(db, sid)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert queue.enqueued == [t.id for t in trials]  # enqueued once each, in order


def test_grid_study_completes_when_grid_is_exhausted(db, make_spec) -> None:
    space = {
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        "units": {"type": "categorical", "choices": [8, 16]},
    }
    spec = make_spec(
        "g",
        space=space,
        strategy={"name": "grid", "seed": 3},
        budget={"max_trials": 50, "max_parallel": 3, "epochs": 1},
    )
    sid = _create(db, spec)
    scheduler = Scheduler(db, NullQueue())
    for _ in range(5):
        scheduler.run_once()
        _finish_all_running_or_queued(db, sid)
    scheduler.run_once()
    trials = _trials(db, sid)
    assert sorted((t.params["optimizer"], t.params["units"]) for t in trials) == [
        ("adam", 8),
        ("adam", 16),
        ("sgd", 8),
        ("sgd", 16),
    ]
    assert _study_status(db, sid) == "completed"


def test_failed_trials_count_against_the_budget(db, make_spec) -> None:
    sid = _create(db, make_spec("f", budget={"max_trials": 2, "max_parallel": 2, "epochs": 1}))
    scheduler = Scheduler(db, NullQueue())
    scheduler.run_once()
    with db.session() as session:
        for trial in session.scalars(select(Trial).where(Trial.study_id == sid)):
            trial.status, trial.error = "failed", "boom"
    assert scheduler.run_once() == 0
    assert _study_status(db, sid) == "completed"


def test_recover_reenqueues_queued_and_orphaned_running_trials(db, make_spec) -> None:
    sid = _create(db, make_spec("r", budget={"max_trials": 4, "max_parallel": 2, "epochs": 1}))
    Scheduler(db, NullQueue()).run_once()
    with db.session() as session:
        first = session.scalar(select(Trial).where(Trial.study_id == sid, Trial.number == 0))
        first.status, first.attempt = "running", 1

    # A queue that does not own the workers leaves running trials alone.
    foreign = NullQueue()
    Scheduler(db, foreign).recover()
    assert len(foreign.enqueued) == 1

    owning = OwningQueue()
    Scheduler(db, owning).recover()
    trials = _trials(db, sid)
    assert sorted(owning.enqueued) == sorted(t.id for t in trials)
    assert {t.status for t in trials} == {"queued"}
    assert trials[0].attempt == 1  # the next start makes attempt 2, fencing the dead one


def test_stopped_study_gets_no_new_trials(db, make_spec) -> None:
    sid = _create(db, make_spec("s", budget={"max_trials": 9, "max_parallel": 2, "epochs": 1}))
    scheduler = Scheduler(db, NullQueue())
    scheduler.run_once()
    with db.session() as session:
        session.get(Study, sid).status = "stopped"
    _finish_all_running_or_queued(db, sid)
    assert scheduler.run_once() == 0
    assert len(_trials(db, sid)) == 2
