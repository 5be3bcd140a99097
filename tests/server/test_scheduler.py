"""The scheduler keeps max_parallel trials in flight until the budget is spent, completes
studies, and re-enqueues what the database holds as queued after a restart."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from hpo.spec import StudySpec
from server.db import Database
from server.queue import NullQueue
from server.scheduler import Scheduler
from server.studies import create_study
from server.tables import Study, Trial


class OwningQueue(NullQueue):
    owns_workers = True


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
    assert _study_status(db, sid) == "failed"  # its budget is spent, and no trial gave a value


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


class LosingQueue(NullQueue):
    """A transport that lost everything (Redis flushed): it holds no live job."""

    def live_trial_ids(self) -> set[int] | None:
        return set()


def _age(
    db: Database,
    study_id: int,
    *,
    heartbeat_s: float = 0,
    started_s: float = 0,
    queued_s: float = 0,
) -> None:
    from datetime import timedelta

    from server.tables import utcnow

    now = utcnow()
    with db.session() as session:
        for trial in session.scalars(select(Trial).where(Trial.study_id == study_id)):
            if trial.status == "running":
                trial.heartbeat_at = now - timedelta(seconds=heartbeat_s)
                trial.started_at = now - timedelta(seconds=started_s)
            trial.queued_at = now - timedelta(seconds=queued_s)


def _listening_for_an_hour(scheduler: Scheduler) -> Scheduler:
    """A scheduler of a server that has run for a while (the reaper counts silence
    from the server's start at the earliest)."""
    from datetime import timedelta

    from server.tables import utcnow

    scheduler.listening_since = utcnow() - timedelta(hours=1)
    return scheduler


def _run_all(db: Database, study_id: int) -> None:
    with db.session() as session:
        for trial in session.scalars(select(Trial).where(Trial.study_id == study_id)):
            trial.status, trial.attempt = "running", trial.attempt + 1


def test_reaper_retries_silent_trials_then_fails_them_past_max_retries(db, make_spec) -> None:
    spec = make_spec(
        "reap", budget={"max_trials": 1, "max_parallel": 1, "epochs": 1, "max_retries": 2}
    )
    sid = _create(db, spec)
    queue = NullQueue()
    scheduler = _listening_for_an_hour(Scheduler(db, queue, heartbeat_timeout=5))
    scheduler.run_once()
    for round_ in (1, 2):
        _run_all(db, sid)
        _age(db, sid, heartbeat_s=1)
        assert scheduler.maintain() == ([], [])  # fresh heartbeat: left alone
        _age(db, sid, heartbeat_s=6)
        reaped, _ = scheduler.maintain()
        trial = _trials(db, sid)[0]
        assert reaped == [trial.id]
        assert (trial.status, trial.failures) == ("queued", round_)
        assert "no heartbeat" in trial.error and f"retry {round_} of 2" in trial.error
    _run_all(db, sid)
    _age(db, sid, heartbeat_s=6)
    assert scheduler.maintain() == ([], [])
    trial = _trials(db, sid)[0]
    assert trial.status == "failed"
    assert trial.attempt == 3  # never more than max_retries + 1 attempts
    assert "no retries left" in trial.error
    assert queue.enqueued.count(trial.id) == 3  # first enqueue + two retries


def test_a_restarted_server_counts_silence_from_its_own_start(db, make_spec) -> None:
    """The server was down for longer than the heartbeat timeout: a lease silent since
    before this server started is not reaped at once. It keeps its attempt when its
    worker is heard within the timeout of the start, and is reaped only once the
    timeout has passed since then with no word."""
    from datetime import timedelta

    from server.tables import utcnow

    spec = make_spec("outage", budget={"max_trials": 2, "max_parallel": 2, "epochs": 1})
    sid = _create(db, spec)
    Scheduler(db, NullQueue()).run_once()
    _run_all(db, sid)
    _age(db, sid, heartbeat_s=30)  # the last word came 30 s ago, before the restart
    restarted = Scheduler(db, NullQueue(), heartbeat_timeout=5)
    restarted.listening_since = utcnow() - timedelta(seconds=2)  # up for 2 s
    assert restarted.maintain() == ([], [])
    assert [t.status for t in _trials(db, sid)] == ["running", "running"]
    back, silent = _trials(db, sid)
    with db.session() as session:  # one worker comes back: its heartbeat lands
        session.get(Trial, back.id).heartbeat_at = utcnow()
    restarted.listening_since = utcnow() - timedelta(seconds=6)  # 6 s later
    reaped, _ = restarted.maintain()
    assert reaped == [silent.id]
    after = {t.id: t for t in _trials(db, sid)}
    assert after[back.id].status == "running" and after[back.id].attempt == 1
    assert after[silent.id].status == "queued"
    assert "no heartbeat for 6" in after[silent.id].error


def test_reaper_ends_attempts_past_the_trial_timeout(db, make_spec) -> None:
    budget = {
        "max_trials": 1,
        "max_parallel": 1,
        "epochs": 1,
        "max_retries": 0,
        "trial_timeout": 10,
    }
    sid = _create(db, make_spec("slow", budget=budget))
    scheduler = _listening_for_an_hour(Scheduler(db, NullQueue(), heartbeat_timeout=60))
    scheduler.run_once()
    _run_all(db, sid)
    _age(db, sid, heartbeat_s=1, started_s=11)
    scheduler.maintain()
    trial = _trials(db, sid)[0]
    assert trial.status == "failed"
    assert "trial timeout" in trial.error


def test_reaper_stops_silent_trials_of_a_stopped_study(db, make_spec) -> None:
    sid = _create(db, make_spec("gone", budget={"max_trials": 1, "max_parallel": 1, "epochs": 1}))
    scheduler = _listening_for_an_hour(Scheduler(db, NullQueue(), heartbeat_timeout=5))
    scheduler.run_once()
    _run_all(db, sid)
    with db.session() as session:
        session.get(Study, sid).status = "stopped"
    _age(db, sid, heartbeat_s=1)
    scheduler.maintain()
    assert _trials(db, sid)[0].status == "running"  # alive: it hears "stop" at its next report
    _age(db, sid, heartbeat_s=6)
    scheduler.maintain()
    assert _trials(db, sid)[0].status == "stopped"


def test_reconciler_reenqueues_queued_trials_no_job_holds_after_a_grace_period(
    db, make_spec
) -> None:
    sid = _create(db, make_spec("lost", budget={"max_trials": 3, "max_parallel": 3, "epochs": 1}))
    queue = LosingQueue()
    scheduler = Scheduler(db, queue, reconcile_interval=5)
    scheduler.run_once()
    assert scheduler.maintain() == ([], [])  # just queued: their jobs may be on the way
    _age(db, sid, queued_s=6)
    _, reconciled = scheduler.maintain()
    assert sorted(reconciled) == sorted(t.id for t in _trials(db, sid))
    assert len(queue.enqueued) == 6  # enqueued once by the scheduler, once more now


def test_a_slot_held_for_a_finish_is_left_to_its_refill(db, make_spec) -> None:
    """A finish commits outside the scheduler's lock and refills after: the slot it
    frees is held for that refill (``server.holds``), so a pass in between fills it not,
    another finish's refill neither, and the finish's own refill does. A hold on a
    trial whose finish has not committed yet (still running in the database) takes
    nothing more: that slot is counted in flight already, not twice."""
    scheduler = Scheduler(db, NullQueue())
    sid = _create(db, make_spec("h", budget={"max_trials": 9, "max_parallel": 2, "epochs": 1}))
    assert scheduler.run_once() == 2
    first, second = _trials(db, sid)

    scheduler.holds.hold(first.id, sid, first.number)  # its finish is under way
    with db.session() as session:
        session.get(Trial, second.id).status = "failed"  # the reaper ends another
    assert scheduler.run_once() == 1  # that slot is filled (number 2), first's not twice
    with db.session() as session:
        session.get(Trial, first.id).status = "completed"  # the finish commits
    assert scheduler.run_once() == 0  # a pass leaves the held slot alone
    with db.session() as session:
        study = session.get(Study, sid)
        assert scheduler.fill(session, study, finishing=second.id) == []  # not its slot
        rows = scheduler.fill(session, study, finishing=first.id)  # the finish's refill
    assert [row["number"] for row in rows] == [3]
    scheduler.holds.release(first.id)  # refilled: the request lets go

    scheduler.holds.hold(rows[0]["id"], sid, 3)
    scheduler.holds.release(rows[0]["id"])  # a finish that failed lets go too
    _finish_all_running_or_queued(db, sid)
    assert scheduler.run_once() == 2  # nothing held: the pass fills both slots
    assert [t.number for t in _trials(db, sid)] == [0, 1, 2, 3, 4, 5]


def _end_open_trials(db: Database, study_id: int, outcomes: list[tuple[str, str | None]]) -> None:
    """End the study's open trials in number order, one outcome each (status, error),
    a second apart: the order they end in."""
    from datetime import timedelta

    from server.tables import utcnow

    start = utcnow()
    with db.session() as session:
        open_trials = session.scalars(
            select(Trial)
            .where(Trial.study_id == study_id, Trial.status.in_(("queued", "running")))
            .order_by(Trial.number)
        ).all()
        for i, (trial, (status, error)) in enumerate(zip(open_trials, outcomes, strict=False)):
            trial.status, trial.error = status, error
            trial.value = 0.5 if status == "completed" else None
            trial.finished_at = start + timedelta(seconds=i)


def test_a_study_whose_trials_fail_in_a_row_fails_fast_with_the_reasons(db, make_spec) -> None:
    budget = {"max_trials": 50, "max_parallel": 4, "epochs": 1, "max_consecutive_failures": 4}
    sid = _create(db, make_spec("broken", budget=budget))
    scheduler = Scheduler(db, NullQueue())
    scheduler.run_once()
    crash = ("failed", "training crashed: ImportError: no module named 'foo' (attempt 1)")
    _end_open_trials(db, sid, [("completed", None), crash, crash, crash])
    scheduler.run_once()  # 3 failures in a row: not yet
    assert _study_status(db, sid) == "running"
    lost = ("failed", "attempt 3 lost: no heartbeat for 6.1s; no retries left")
    _end_open_trials(db, sid, [crash, lost, crash])  # the fourth stays queued
    scheduler.run_once()
    with db.session() as session:
        study = session.get(Study, sid)
        assert study.status == "failed" and study.finished_at is not None
        assert study.reason.startswith("fail-fast: the last 4 trials failed in a row")
        # grouped with the numbers set aside, most frequent first
        assert "5 x training crashed: ImportError" in study.reason
        assert "1 x attempt 3 lost" in study.reason
        counts = {
            status: n
            for status, n in session.execute(
                select(Trial.status, func.count())
                .where(Trial.study_id == sid)
                .group_by(Trial.status)
            )
        }
    assert counts.get("queued", 0) == 0 and counts.get("running", 0) == 0
    assert counts["stopped"] == 1  # the queued one never starts
    assert scheduler.run_once() == 0  # a failed study gets no new trials


def test_failures_between_successes_never_fail_fast(db, make_spec) -> None:
    budget = {"max_trials": 12, "max_parallel": 4, "epochs": 1, "max_consecutive_failures": 2}
    sid = _create(db, make_spec("flaky", budget=budget))
    scheduler = Scheduler(db, NullQueue())
    crash = ("failed", "out of memory")
    for _ in range(3):
        scheduler.run_once()
        _end_open_trials(db, sid, [crash, ("completed", None), crash, ("completed", None)])
    scheduler.run_once()
    assert _study_status(db, sid) == "completed"


def test_fail_fast_off_and_every_trial_failed_ends_failed(db, make_spec) -> None:
    budget = {"max_trials": 3, "max_parallel": 3, "epochs": 1, "max_consecutive_failures": 0}
    sid = _create(db, make_spec("hopeless", budget=budget))
    scheduler = Scheduler(db, NullQueue())
    scheduler.run_once()
    _end_open_trials(db, sid, [("failed", "boom")] * 3)
    scheduler.run_once()
    with db.session() as session:
        study = session.get(Study, sid)
        assert study.status == "failed"
        assert study.reason == "every trial failed; most common reasons: 3 x boom"
