"""The finish as a service operation (server.finish), called without HTTP: it ends the
attempt, refills the freed slot at once, leases the next trial to the finishing worker,
answers a repeat with the same trial, and releases the slot it held whatever happens,
on both databases (their locking differs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from hpo.schemas import FinishIn
from hpo.spec import StudySpec
from server import trials
from server.db import Database
from server.errors import Conflict
from server.finish import Timing, finish
from server.migrate import upgrade
from server.queue import NullQueue
from server.scheduler import Scheduler
from server.studies import create_study
from server.tables import Trial

TIMING = Timing(heartbeat_interval=5.0, report_interval=0.0)


@pytest.fixture
def scheduler(database_url: str) -> Iterator[Scheduler]:
    upgrade(database_url)
    db = Database(database_url)
    # A running scheduling thread (finishes refill only then), passes far apart so
    # that the refills seen below are the finish's own.
    running = Scheduler(db, NullQueue(), interval=3600, reconcile_interval=3600)
    running.start()
    yield running
    running.stop()
    db.dispose()


def _started(scheduler: Scheduler, make_spec, max_trials: int = 3) -> int:
    """A study with one trial started by worker ``w1``; its id."""
    with scheduler.db.session() as session:
        spec = make_spec("f", budget={"max_trials": max_trials, "max_parallel": 1, "epochs": 1})
        study_id = create_study(session, StudySpec.model_validate(spec)).id
    scheduler.run_once()
    with scheduler.db.session() as session:
        trial_id = session.scalar(select(Trial.id).where(Trial.study_id == study_id))
        assert trial_id is not None
        trials.start_trial(session, trial_id, "w1")
    return trial_id


def _status(scheduler: Scheduler) -> list[tuple[int, str, str | None]]:
    with scheduler.db.session() as session:
        rows = session.execute(select(Trial.number, Trial.status, Trial.worker)).all()
    return sorted((n, s, w) for n, s, w in rows)


def test_a_finish_refills_its_slot_and_leases_the_next_trial(scheduler, make_spec) -> None:
    first = _started(scheduler, make_spec)
    body = FinishIn(attempt=1, status="completed", value=0.5, lease_next=True)
    out = finish(scheduler, first, body, TIMING)
    assert out.status == "completed" and out.value == 0.5
    assert out.next_trial is not None and out.next_trial.number == 1
    assert out.next_trial.heartbeat_interval == TIMING.heartbeat_interval
    assert _status(scheduler) == [(0, "completed", "w1"), (1, "running", "w1")]
    # A repeat (the answer was lost) writes nothing and hands over the same trial.
    again = finish(scheduler, first, body, TIMING)
    assert again.next_trial == out.next_trial
    assert len(_status(scheduler)) == 2
    assert len(scheduler.holds) == 0  # released once the refill is done


def test_without_lease_next_the_new_trial_is_queued(scheduler, make_spec) -> None:
    first = _started(scheduler, make_spec)
    out = finish(scheduler, first, FinishIn(attempt=1, status="completed", value=1.0), TIMING)
    assert out.next_trial is None
    assert _status(scheduler) == [(0, "completed", "w1"), (1, "queued", None)]


def test_a_superseded_attempt_is_refused_and_nothing_is_held(scheduler, make_spec) -> None:
    first = _started(scheduler, make_spec)
    with pytest.raises(Conflict):
        finish(scheduler, first, FinishIn(attempt=2, status="completed", value=1.0), TIMING)
    assert _status(scheduler) == [(0, "running", "w1")]
    assert len(scheduler.holds) == 0
    out = finish(scheduler, first, FinishIn(attempt=1, status="failed", error="x"), TIMING)
    assert out.status == "failed"
    assert _status(scheduler)[1][1] == "queued"
