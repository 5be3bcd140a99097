"""Early stopping at report time: the study's stopping rule, fed from the database.

The rule itself is pure and lives in ``search`` (the contract in ``search.stopping``,
the rules by name in ``search.stopping_registry``); this module only feeds it. Its
inputs: the reporting trial's best value up to the step (one indexed query), and the
peers' values: for every finished (completed or pruned) trial with a report at the
step, its best value over its reports up to that step, every attempt counted.

The peers' values come from a cache of each study's finished curves
(:class:`FinishedCurves`, kept in the app's caches: :mod:`server.caches`), so a decision
costs no scan of the study's reports (the aggregate query over every finished trial's
reports grows with the study). The cache is for speed only, never correctness
(DESIGN.md, principle 2): a finished trial's reports no longer change (reports are
refused once a trial is terminal) and finished trials stay finished, so the set only
grows; every decision first compares the database's count of finished trials with the
cache's and folds in the difference (or reloads) before answering; that count comes from
the study's count mirror (:mod:`server.counts`, exact under the same invariants). A
decision whose view the cache cannot match exactly (the reporting trial itself counted
as finished, or fewer finished trials than cached) falls back to the aggregate query.

The first build of a large study's cache (2-3 s at 100,000 trials) would land on one
worker's report after a server restart; :class:`CacheWarmUp` builds it in the
background at start-up instead, for the running studies with a stopping rule.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from bisect import insort
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from search.status import FINISHED, TERMINAL, Direction
from search.stopping_registry import make_stopping_rule
from server.caches import CacheKind, caches_of
from server.counts import trial_counts
from server.db import Database
from server.tables import Report, Study, Trial

__all__ = [
    "CacheWarmUp",
    "FinishedCurves",
    "cached_peers",
    "finished_curves",
    "query_peers",
    "stopping_decision",
    "warm_study",
]

log = logging.getLogger(__name__)

#: Studies whose curves are kept (least recently used dropped first): 8 bytes per
#: (finished trial, step) each, e.g. 5 MB for 100,000 trials of 6 reports.
MAX_STUDIES = 4
_CHUNK = 2000  # newly finished trials loaded by id; more: by study


@dataclass
class FinishedCurves:
    """One study's finished trials as ``by_step``: step -> the sorted best-so-far values,
    at that step, of the finished trials with a (non-null) report at that step.

    ``ids`` are the finished trials folded in; ``open`` the trials last seen queued or
    running and ``max_id`` the highest trial id seen: a later sync re-reads only those
    and newer ids, then checks the finished count (the database's, in the same
    statement) and reloads everything on a difference.
    """

    maximize: bool
    ids: set[int] = field(default_factory=set)
    open: set[int] = field(default_factory=set)
    max_id: int = 0
    by_step: dict[int, array] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def peers(self, step: int) -> array:
        """A copy of the values at ``step`` (taken under the lock by the caller)."""
        return array("d", self.by_step.get(step, ()))

    def sync(self, session: Session, study_id: int, finished: int) -> None:
        """Bring the cache to the database's view, whose finished count is ``finished``."""
        where = [Trial.study_id == study_id]
        db = session.connection()  # Core rows: no ORM loading for bulk columns
        if self.max_id:
            moved = or_(Trial.id > self.max_id, Trial.id.in_(sorted(self.open)))
            total = (
                select(func.count())
                .select_from(Trial)
                .where(Trial.study_id == study_id, Trial.status.in_(FINISHED))
                .scalar_subquery()
            )
            rows = db.execute(select(Trial.id, Trial.status, total).where(*where, moved)).all()
            fresh = self._see((i, s) for i, s, _ in rows)
            if rows and len(self.ids) + len(fresh) == rows[0][2]:
                self._fold(session, study_id, fresh)
                return
        # Cold, or a trial finished outside what was re-read: rebuild from the study.
        self.ids, self.open, self.max_id, self.by_step = set(), set(), 0, {}
        every = select(Trial.id, Trial.status).where(*where).execution_options(yield_per=20_000)
        self._fold(session, study_id, self._see(db.execute(every)))

    def _see(self, rows: Iterable[Any]) -> set[int]:
        """Note the open trials and the highest id among ``(id, status)`` rows; return
        the finished trials not folded in yet."""
        fresh: set[int] = set()
        for trial_id, status in rows:
            self.max_id = max(self.max_id, trial_id)
            if status in TERMINAL:
                self.open.discard(trial_id)
                if status in FINISHED and trial_id not in self.ids:
                    fresh.add(trial_id)
            else:
                self.open.add(trial_id)
        return fresh

    def _fold(self, session: Session, study_id: int, fresh: set[int]) -> None:
        """Add the curves of the ``fresh`` finished trials."""
        if not fresh:
            return
        db = session.connection()
        rows = select(Report.trial_id, Report.step, Report.value).where(Report.value.is_not(None))
        rows = rows.order_by(Report.trial_id, Report.step)
        if len(fresh) <= _CHUNK:
            result: Iterable[Any] = db.execute(rows.where(Report.trial_id.in_(sorted(fresh))))
        else:  # a cold start: one streamed pass over the study's finished trials' reports
            every = rows.join(Trial, Trial.id == Report.trial_id).where(
                Trial.study_id == study_id, Trial.status.in_(FINISHED)
            )
            every = every.execution_options(yield_per=20_000)
            # Trials that finished after ``fresh`` was read wait for the next sync.
            result = (r for r in db.execute(every) if r[0] in fresh)
        added: dict[int, list[float]] = defaultdict(list)
        self._best_so_far(result, added)
        for step, values in added.items():
            current = self.by_step.get(step)
            if current is not None and len(values) <= 16:
                for v in values:
                    insort(current, v)
            else:
                self.by_step[step] = array("d", sorted([*(current or ()), *values]))
        self.ids |= fresh

    def _best_so_far(self, rows: Iterable[Any], out: dict[int, list[float]]) -> None:
        """Append each trial's best value up to each of its steps (rows in (trial, step)
        order; several attempts may report one step)."""
        better = max if self.maximize else min
        trial: int | None = None
        step = 0
        best = 0.0
        for trial_id, s, value in rows:
            if trial_id != trial:
                if trial is not None:
                    out[step].append(best)
                trial, step, best = trial_id, s, value
                continue
            if s != step:
                out[step].append(best)
                step = s
            best = better(best, value)
        if trial is not None:
            out[step].append(best)


CURVES: CacheKind[FinishedCurves] = CacheKind("finished-curves", MAX_STUDIES)


def finished_curves(session: Session, study: Study) -> FinishedCurves:
    """The study's cache as it stands (an empty one when there is none yet): not
    brought up to date, so only for looking at (tests, diagnostics) or syncing."""
    return caches_of(session).get(
        CURVES, study, lambda: FinishedCurves(maximize=study.direction == "maximize")
    )


def query_peers(session: Session, study: Study, trial: Trial, step: int) -> list[float]:
    """The peers' values straight from the reports (the cache's reference)."""
    best = func.max if study.direction == "maximize" else func.min
    rows = session.execute(
        select(Report.trial_id, best(Report.value))
        .join(Trial, Trial.id == Report.trial_id)
        .where(
            Trial.study_id == study.id,
            Trial.status.in_(FINISHED),
            Trial.id != trial.id,
            Report.step <= step,
            Report.value.is_not(None),
        )
        .group_by(Report.trial_id)
        .having(func.max(Report.step) >= step)
    ).all()
    return [float(v) for _, v in rows if v is not None]


def _finished(session: Session, study: Study) -> int:
    # From the study's count mirror: a count over every finished trial cost ~10 ms a
    # report at 100,000 trials.
    counts, _ = trial_counts(session, study)
    return sum(counts.get(status, 0) for status in FINISHED)


@contextmanager
def _up_to_date(session: Session, study: Study) -> Iterator[tuple[FinishedCurves, int]]:
    """The study's cache synced to the finished count, and that count, with the cache's
    lock held for the block (a decision and a warm-up share this path)."""
    finished = _finished(session, study)
    curves = finished_curves(session, study)
    with curves.lock:
        if finished > len(curves.ids):
            curves.sync(session, study.id, finished)
        yield curves, finished


def cached_peers(session: Session, study: Study, trial: Trial, step: int) -> array | None:
    """The peers' values from the cache, brought up to date; None when the cache
    cannot match the database's view exactly (module doc)."""
    with _up_to_date(session, study) as (curves, finished):
        exact = finished == len(curves.ids) and trial.id not in curves.ids
        return curves.peers(step) if exact else None


def warm_study(session: Session, study: Study) -> int:
    """Bring the study's cache up to the database's view, as its next decision would,
    and return how many finished trials it holds.

    It builds under the cache's lock, as a decision does: a decision that arrives
    meanwhile waits, then finds the cache built (its own count check still decides
    whether the cache may answer), so it is never answered from a half-built cache."""
    with _up_to_date(session, study) as (curves, _):
        return len(curves.ids)


class CacheWarmUp:
    """Builds, once, in a daemon thread, the caches of the running studies that have a
    stopping rule: the ``MAX_STUDIES`` most recently updated (more would evict the
    first ones from the cache).

    Speed only: no decision depends on it. A decision for the study being built waits
    for the build (:func:`warm_study`); any other one syncs the cache itself, as
    without a warm-up. Starting it costs nothing to the server's start-up or
    readiness. It never raises: an error is logged and skips the study (or ends the
    warm-up when the studies cannot be listed); a study deleted or no longer running
    by its turn is skipped. ``done`` is set when the thread has ended; ``warmed``
    lists the ids of the studies it built, in order.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self.warmed: list[int] = []
        self.done = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hpo-stopping-warm-up", daemon=True)

    def start(self) -> CacheWarmUp:
        self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the thread to end before its next study (a build under way is not
        interrupted: it holds the cache's lock) and wait up to ``timeout`` seconds."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            for study_id in self._studies():
                if self._stopping.is_set():
                    break
                self._warm(study_id)
        except Exception:
            self._failed("median rule cache warm-up: cannot list the running studies")
        finally:
            self.done.set()

    def _studies(self) -> list[int]:
        """Ids of the running studies with a stopping rule, most recently updated first."""
        query = select(Study.id, Study.spec).where(Study.status == "running")
        query = query.order_by(Study.updated_at.desc(), Study.id.desc())
        with self._db.session() as session:
            rows = session.execute(query).all()
        # The rule lives in the spec's JSON: filtered here, not in dialect-specific SQL.
        return [int(i) for i, spec in rows if (spec or {}).get("stopping")][:MAX_STUDIES]

    def _warm(self, study_id: int) -> None:
        started = time.perf_counter()
        try:
            with self._db.session() as session:
                study = session.get(Study, study_id)
                if study is None or study.status != "running":
                    return  # deleted, or stopped, since it was listed
                finished = warm_study(session, study)
        except Exception:
            self._failed("median rule cache warm-up of study %d failed", study_id)
            return
        self.warmed.append(study_id)
        log.info(
            "median rule cache of study %d built in %.2f s (%d finished trials)",
            study_id,
            time.perf_counter() - started,
            finished,
        )

    def _failed(self, message: str, *args: object) -> None:
        # At shutdown the database goes away under the thread: expected, not a warning.
        level = logging.DEBUG if self._stopping.is_set() else logging.WARNING
        log.log(level, message, *args, exc_info=True)


def stopping_decision(
    session: Session, study: Study, trial: Trial, step: int, *, use_cache: bool = True
) -> str | None:
    """``"stop"`` with the rule's reason, or None to continue. The study's stopping rule
    (``search.stopping_registry``, built from ``spec["stopping"]``) decides; this only
    feeds it the inputs its contract names (``search.stopping.StoppingRule``): the
    trial's best value by ``step`` and the finished peers' (cached, or with
    ``use_cache=False`` from the aggregate query, the reference the cache must match)."""
    rule: dict[str, Any] | None = (study.spec or {}).get("stopping")
    if not rule:
        return None
    best = func.max if study.direction == "maximize" else func.min
    mine = session.scalar(
        select(best(Report.value)).where(
            Report.trial_id == trial.id, Report.step <= step, Report.value.is_not(None)
        )
    )
    if mine is None:
        return None
    peers: Any = cached_peers(session, study, trial, step) if use_cache else None
    if peers is None:
        peers = query_peers(session, study, trial, step)
    options = {key: value for key, value in rule.items() if key != "rule"}
    stopper = make_stopping_rule(rule.get("rule", "median"), options)
    direction: Direction = "maximize" if study.direction == "maximize" else "minimize"
    if stopper.decide(step, float(mine), peers, direction) == "stop":
        return stopper.reason(step, float(mine), peers, direction)
    return None
