"""The scheduler's in-memory history mirror: it reads only new and open trials, sees
trials finish, and starts over when it disagrees with the database."""

from __future__ import annotations

from sqlalchemy import select, update

from hpo.spec import StudySpec
from server.caches import caches_of
from server.db import Database
from server.history import HISTORY, HistoryMirror
from server.queue import NullQueue
from server.scheduler import Scheduler
from server.studies import create_study
from server.tables import Study, Trial


def _mirror(session, study_id: int) -> HistoryMirror:
    """The study's mirror in the database's caches, brought up to date (as a pass does)."""
    return Scheduler._history(session, session.get(Study, study_id))


def _study(db: Database, make_spec, trials: int) -> int:
    """A study with ``trials`` queued trials (through the real scheduler)."""
    with db.session() as session:
        spec = make_spec("h", budget={"max_trials": 1000, "max_parallel": trials, "epochs": 1})
        study_id = create_study(session, StudySpec.model_validate(spec)).id
    Scheduler(db, NullQueue()).run_once()
    return study_id


def test_mirror_holds_every_trial_and_rereads_only_open_and_new_ones(db, make_spec) -> None:
    study_id = _study(db, make_spec, 6)
    with db.session() as session:
        history = _mirror(session, study_id)
    assert [r.number for r in history.records] == list(range(6))
    assert history.created == 6 and history.in_flight == 6
    # Two trials finish; the next refresh sees them terminal and stops re-reading them.
    with db.session() as session:
        session.execute(
            update(Trial)
            .where(Trial.study_id == study_id, Trial.number.in_([0, 3]))
            .values(status="completed", value=0.25)
        )
    with db.session() as session:
        history = _mirror(session, study_id)
    assert history.in_flight == 4
    assert history.records[3].status == "completed" and history.records[3].value == 0.25
    assert history.open == {1, 2, 4, 5}
    # Later passes read only the open trials (and new ones), never the finished two.
    with db.session() as session:
        assert _mirror(session, study_id).refresh(session) == 4
    Scheduler(db, NullQueue()).run_once()  # refills the two free slots: trials 6 and 7
    with db.session() as session:
        assert _mirror(session, study_id).refresh(session) == 6
        assert [r.number for r in _mirror(session, study_id).records] == list(range(8))


def test_mirror_starts_over_when_the_database_disagrees(db, make_spec) -> None:
    study_id = _study(db, make_spec, 3)
    with db.session() as session:
        _mirror(session, study_id)
        # A row the mirror never saw below its highest number (cannot happen through
        # the scheduler; the check is what keeps the cache honest anyway).
        session.execute(
            update(Trial).where(Trial.study_id == study_id).values(number=Trial.number + 10)
        )
    with db.session() as session:
        stale = _mirror(session, study_id)  # appends 10..12, still holds 0..2
        assert stale.created == 6
    with db.session() as session:
        for _, mirror in caches_of(session).entries(HISTORY):
            mirror.verify(session)  # 6 held, 3 in the database: emptied
        history = _mirror(session, study_id)
    assert [r.number for r in history.records] == [10, 11, 12]
    assert history.open == {10, 11, 12}


def test_scheduler_history_follows_finishes_over_many_passes(db, make_spec) -> None:
    scheduler = Scheduler(db, NullQueue())
    with db.session() as session:
        spec = make_spec("g", budget={"max_trials": 40, "max_parallel": 4, "epochs": 1})
        study_id = create_study(session, StudySpec.model_validate(spec)).id
    for _ in range(20):
        scheduler.run_once()
        with db.session() as session:
            session.execute(
                update(Trial)
                .where(Trial.study_id == study_id, Trial.status == "queued")
                .values(status="completed", value=1.0)
            )
    scheduler.run_once()
    with db.session() as session:
        numbers = list(session.scalars(select(Trial.number).where(Trial.study_id == study_id)))
    # Dense numbers, never past the budget: the mirror's counts were right every pass.
    assert sorted(numbers) == list(range(40))
