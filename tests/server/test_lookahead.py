"""Suggestions asked ahead (``server.lookahead``): when the scheduler asks for more than
the free slots, which spares it hands out, and which it drops."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hpo.spec import StudySpec
from search import Suggestion
from server.caches import caches_of
from server.db import Database
from server.history import HISTORY
from server.lookahead import Lookahead
from server.queue import NullQueue
from server.scheduler import Scheduler
from server.studies import create_study
from server.tables import Study, Trial


def _spares(n: int) -> list[Suggestion]:
    return [Suggestion(params={"x": i}) for i in range(n)]


def test_asks_ahead_only_for_a_busy_parallel_study_whose_strategy_allows_it() -> None:
    look = Lookahead()
    assert look.ask_count(1, 4, allowed=True) == 1  # no gap measured yet
    look.timed(0.05, now=10.0)
    look.fill_at(11.0)  # a second between fills: a 50-ms ask is nothing
    assert look.ask_count(1, 4, allowed=True) == 1
    busy = Lookahead()
    busy.timed(0.05, now=10.0)
    busy.timed(0.05, now=10.06)  # fills as fast as the asks
    assert busy.ask_count(1, 4, allowed=True) == 2  # a quarter of the slots as spares
    assert busy.ask_count(2, 4, allowed=True) == 3
    assert busy.ask_count(1, 16, allowed=True) == 5
    assert busy.ask_count(1, 4, allowed=False) == 1  # e.g. hyperband's rungs
    assert busy.ask_count(1, 1, allowed=True) == 1  # sequential studies stay sequential


def test_spares_serve_the_history_they_were_asked_for_only() -> None:
    look = Lookahead()
    look.keep(_spares(3), created=10, finished=6)
    assert look.take(1, created=10, finished=7, max_parallel=4) == _spares(1)
    assert look.take(2, created=11, finished=8, max_parallel=4) == _spares(3)[1:]
    assert look.take(1, created=13, finished=8, max_parallel=4) == []  # none left

    look.keep(_spares(3), created=10, finished=6)
    assert look.take(1, created=11, finished=6, max_parallel=4) == []  # someone else's trial
    assert look.spares == []  # dropped, not kept for later

    look.keep(_spares(3), created=10, finished=6)
    assert look.take(1, created=10, finished=10, max_parallel=4) == []  # 4 results since
    look.keep(_spares(2), created=10, finished=6)
    assert look.take(3, created=10, finished=6, max_parallel=4) == []  # all or nothing
    assert look.spares == []


def _trials(db: Database, study_id: int) -> list[Trial]:
    with db.session() as session:
        return list(
            session.scalars(
                select(Trial).where(Trial.study_id == study_id).order_by(Trial.number)
            ).all()
        )


def _finish(db: Database, study_id: int, count: int) -> None:
    """Complete the ``count`` oldest trials in flight, with distinct values."""
    with db.session() as session:
        open_trials = session.scalars(
            select(Trial)
            .where(Trial.study_id == study_id, Trial.status.in_(("queued", "running")))
            .order_by(Trial.number)
            .limit(count)
        ).all()
        for trial in open_trials:
            trial.status, trial.value = "completed", 0.1 * (trial.number % 7)


def _lookahead(db: Database, study_id: int) -> Lookahead:
    with db.session() as session:
        study = session.get(Study, study_id)
        mirror: Any = caches_of(session).get(HISTORY, study, lambda: None)
        return mirror.lookahead


def _busy_bayes_study(
    db: Database, make_spec: Any, *, max_trials: int, max_parallel: int
) -> tuple[int, Scheduler, Lookahead, int]:
    """A bayes study after its first pass, its asks treated as slower than its trials:
    (study id, scheduler, the study's lookahead, trials the first pass queued)."""
    spec = make_spec(
        "ahead",
        strategy={"name": "bayes", "seed": 3, "options": {"n_initial_points": 3}},
        budget={"max_trials": max_trials, "max_parallel": max_parallel, "epochs": 1},
    )
    with db.session() as session:
        sid = create_study(session, StudySpec.model_validate(spec)).id
    scheduler = Scheduler(db, NullQueue())
    first = scheduler.run_once()
    look = _lookahead(db, sid)
    look.busy_share = 0.0  # as if every ask took longer than the trials
    return sid, scheduler, look, first


def test_the_scheduler_hands_out_spares_then_drops_them_when_results_pile_up(
    db: Database, make_spec: Any
) -> None:
    sid, scheduler, look, first = _busy_bayes_study(db, make_spec, max_trials=10, max_parallel=4)
    assert first == 4

    _finish(db, sid, 1)
    assert scheduler.run_once() == 1  # the first gap is measured here: a plain ask
    _finish(db, sid, 1)
    assert scheduler.run_once() == 1  # asked for 1 + 1 spare
    held = [dict(s.params) for s in look.spares]
    assert len(held) == 1
    for spare in held:
        _finish(db, sid, 1)
        assert scheduler.run_once() == 1
        assert dict(_trials(db, sid)[-1].params) == spare  # a spare, not a new ask
    assert look.spares == []

    _finish(db, sid, 1)
    assert scheduler.run_once() == 1  # a new batch
    stale = [dict(s.params) for s in look.spares]
    assert len(stale) == 1
    _finish(db, sid, 4)  # max_parallel results before the next fill: spares are stale
    assert scheduler.run_once() == 2  # the budget's last two
    trials = _trials(db, sid)
    assert all(dict(t.params) not in stale for t in trials[-2:])
    assert len(trials) == 10
    keys = {tuple(sorted(t.params.items())) for t in trials}
    assert len(keys) == 10  # no point suggested twice
    assert sum(t.status in ("queued", "running") for t in trials) == 2


def test_a_sequential_study_never_asks_ahead(db: Database, make_spec: Any) -> None:
    sid, scheduler, look, _ = _busy_bayes_study(db, make_spec, max_trials=5, max_parallel=1)
    for _ in range(4):
        _finish(db, sid, 1)
        assert scheduler.run_once() == 1
        assert look.spares == []
