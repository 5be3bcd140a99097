"""The scheduler: turns strategy suggestions into queued trials until budgets are spent.

One scheduler thread per server process. Each pass, for every running study it keeps up
to ``max_parallel`` trials in flight (queued or running) by asking the study's strategy
for suggestions, writes them as ``queued`` trial rows, commits, and only then hands their
ids to the queue: the database is the source of truth, the queue is transport. A study
whose budget is spent (or whose strategy is exhausted) and has nothing in flight is marked
``completed``. Passes run every ``interval`` seconds and immediately when woken (a study
created). A finished trial's study is refilled by the finish request itself
(:func:`server.refill.refill`: one study, no pass, through :meth:`Scheduler.fill` under
:meth:`Scheduler.exclusive`), which may lease the new trial straight to the finishing
worker; passes remain the fallback for everything else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from search import Strategy, Suggestion, make_strategy
from search.space import SearchSpace
from search.status import LIVE_STUDY
from server.caches import caches_of
from server.db import Database
from server.dispatch import Dispatch, PoolCapacity, serve_pool
from server.history import HISTORY, HistoryMirror
from server.holds import SlotHolds
from server.outcome import common_reasons, end_failed, failing_fast
from server.queue import TrialQueue
from server.reaper import reap_stale, unheld_queued
from server.tables import STUDIES, TRIALS, Study, Trial, utcnow
from server.webhooks import emit

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)
# Built once: the hot path runs them on every finish (see server.history).
_STUDIES = STUDIES
_TRIALS = TRIALS
_INSERT = insert(_TRIALS).returning(_TRIALS.c.id, sort_by_parameter_order=True)
_CLAIM = _STUDIES.update().where(_STUDIES.c.id == bindparam("b_id"), _STUDIES.c.status == "running")
#: The claim before inserting trials, answering in the same round trip with the study's
#: last trial number (NULL: none yet); no row when the study no longer runs.
_CLAIM_NUMBERING = _CLAIM.values(status="running", updated_at=bindparam("b_now")).returning(
    select(func.max(_TRIALS.c.number))
    .where(_TRIALS.c.study_id == bindparam("b_id"))
    .scalar_subquery()
)


class Scheduler:
    """Keeps every running study supplied with trials."""

    def __init__(
        self,
        db: Database,
        queue: TrialQueue,
        *,
        interval: float = 0.5,
        heartbeat_timeout: float = 60.0,
        reconcile_interval: float = 10.0,
        dispatch: Dispatch = "fair",
    ) -> None:
        self.db = db
        #: "fair": a pool's free slots go by fair share (``server.dispatch``); "fifo":
        #: every study topped up to its ``max_parallel``, workers taking jobs in order.
        self.dispatch = dispatch
        self.capacity = PoolCapacity(heartbeat_timeout)
        self.queue = queue
        self.interval = interval
        self.heartbeat_timeout = heartbeat_timeout
        self.reconcile_interval = reconcile_interval
        self._next_maintenance = 0.0
        #: When this process began to listen for workers: the reaper counts silence
        #: from here at the earliest (reset by ``start``).
        self.listening_since = utcnow()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # One pass at a time, whether from the thread or a direct run_once() call (and
        # refills, ask/tell suggestions: whatever numbers new trials). Reentrant: a
        # repeated finish holds it across its look-up and its refill (``exclusive``).
        self._lock = threading.RLock()
        # Slots freed by finishes on their way to their own refill (server.holds).
        self.holds = SlotHolds()
        #: When ``server.refill`` last found no trial of a pool waiting past its grace.
        self.nothing_waited_at: dict[tuple[str, float], float] = {}

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Recover what a previous process left behind, then run passes in a thread."""
        self.listening_since = utcnow()
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="hpo-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def active(self) -> bool:
        """Whether the scheduling thread runs (not with ``run_scheduler=False``, where
        only explicit ``run_once()`` calls schedule, and finishes refill nothing)."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def exclusive(self) -> threading.RLock:
        """The scheduler's lock (reentrant), held by a pass, a refill
        (:func:`server.refill.refill`) and whatever else numbers new trials. Take it
        before the transaction's first statement (lock, then database: the order every
        holder uses)."""
        return self._lock

    def wake(self) -> None:
        """Ask for a pass now (cheap; safe from any thread)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() >= self._next_maintenance:
                    self._next_maintenance = time.monotonic() + self.reconcile_interval
                    self.maintain()
                self.run_once()
            except Exception:  # keep scheduling: one bad pass must not stop the service
                log.exception("scheduler pass failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    # -- recovery ------------------------------------------------------------------------
    def recover(self) -> None:
        """Re-enqueue trials the database holds as queued (their jobs may be lost).

        With an executor that owns every worker, trials left ``running`` by a previous
        process have no live attempt: they go back to ``queued`` (the next start bumps the
        attempt, fencing off anything the dead attempt might still send).
        """
        with self.db.session() as session:
            if self.queue.owns_workers:
                running_studies = select(Study.id).where(Study.status.in_(LIVE_STUDY))
                # An external runner's lease is not ours to end: the reaper judges it.
                worker_studies = running_studies.where(Study.runner == "workers")
                session.execute(
                    update(Trial)
                    .where(Trial.status == "running", Trial.study_id.in_(worker_studies))
                    .values(status="queued")
                )
                session.execute(
                    update(Trial)
                    .where(Trial.status == "running", Trial.study_id.not_in(running_studies))
                    .values(status="stopped", finished_at=utcnow(), error="server restarted")
                )
            ids = session.scalars(
                select(Trial.id)
                .join(Study, Study.id == Trial.study_id)
                .where(Trial.status == "queued", Study.status.in_(LIVE_STUDY))
                .where(Study.runner == "workers")
                .order_by(Trial.id)
            ).all()
        if ids:
            log.info("re-enqueueing %d queued trial(s)", len(ids))
            self.queue.enqueue(list(ids))

    def maintain(self) -> tuple[list[int], list[int]]:
        """Reap stale running trials and re-enqueue queued trials no job holds.

        Returns (reaped-and-requeued ids, reconciled ids).
        """
        with self._lock:
            with self.db.session() as session:
                reaped = reap_stale(session, utcnow(), self.heartbeat_timeout, self.listening_since)
                for _, history in caches_of(session).entries(HISTORY):
                    history.verify(session)
            if reaped:
                log.warning("re-enqueueing %d trial(s) whose worker was lost", len(reaped))
                self.queue.enqueue(reaped)
            live = self.queue.live_trial_ids()
            reconciled: list[int] = []
            if live is not None:
                with self.db.session() as session:
                    # Grace: a trial queued moments ago may not have reached Redis yet.
                    reconciled = unheld_queued(
                        session, utcnow(), self.reconcile_interval, live | set(reaped)
                    )
                if reconciled:
                    log.warning("re-enqueueing %d queued trial(s) no job held", len(reconciled))
                    self.queue.enqueue(reconciled)
            return reaped, reconciled

    # -- one pass ----------------------------------------------------------------------
    def run_once(self) -> int:
        """One scheduling pass over all running studies; returns trials enqueued."""
        with self._lock:
            with self.db.session() as session:
                running = session.execute(
                    select(Study.id, Study.created_at, Study.pool)
                    .where(Study.status == "running")
                    .order_by(Study.id)
                ).all()
            self.db.caches.keep_only(HISTORY, {(i, created) for i, created, _ in running})
            pools: dict[str, list[int]] = {}
            for study_id, _, pool in running:
                pools.setdefault(pool, []).append(study_id)
            total = 0
            for pool, study_ids in pools.items():
                served = self._serve(pool) if self.dispatch == "fair" else None
                if served is not None:
                    total += served
                for study_id in study_ids:
                    try:
                        # fair share served the pool: only ends (or fails) what is done
                        total += self._schedule_study(study_id, 0 if served is not None else None)
                    except Exception:  # one broken study must not starve the others
                        log.exception("scheduling study %s failed", study_id)
            return total

    def _serve(self, pool: str) -> int | None:
        """Fill one pool's free slots by fair share and enqueue them; None when no
        worker serves it yet (its studies are topped up one by one instead)."""
        try:
            with self.db.session() as session:
                served = serve_pool(self, session, pool)
                if served is None:
                    return None
                new_ids = [row["id"] for _, rows in served for row in rows]
        except Exception:
            log.exception("serving pool %s failed", pool)
            return 0
        if new_ids:
            try:
                self.queue.enqueue(new_ids)
            except Exception:  # they stay queued in the database; recovery re-enqueues
                log.exception("enqueueing %d trial(s) of pool %s failed", len(new_ids), pool)
        return len(new_ids)

    def _schedule_study(self, study_id: int, limit: int | None = None) -> int:
        with self.db.session() as session:
            study = session.get(Study, study_id)
            if study is None or study.status != "running":
                return 0
            new_ids = [row["id"] for row in self.fill(session, study, limit=limit)]
        if new_ids:
            try:
                self.queue.enqueue(new_ids)
            except Exception:  # they stay queued in the database; recovery re-enqueues
                log.exception("enqueueing %d trial(s) of study %s failed", len(new_ids), study_id)
        return len(new_ids)

    def fill(
        self,
        session: Session,
        study: Study,
        lease_to: str | None = None,
        *,
        finishing: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Top the study up to ``max_parallel`` in flight, or by at most ``limit``
        trials (what fair share gave it: ``server.dispatch``), or complete it, in
        ``session`` (committed by the caller, who then enqueues the rows not leased);
        the rows inserted (with their ``id``), the one leased to ``lease_to`` (if any)
        first. Slots held for other finishes' refills (``self.holds``) are left
        free; ``finishing`` is the trial whose finish this refill is, whose slot it
        may take. The caller holds :meth:`exclusive` (numbers must not collide)."""
        history = self._history(session, study)
        in_flight, created = history.in_flight, history.created
        if history.failed > history.failed_checked:  # another trial failed: fail fast?
            history.failed_checked = history.failed
            reason = failing_fast(session, study)
            if reason is not None and end_failed(session, study, reason):
                log.warning("study %s failed: %s", study.name, reason)
                return []
        held = self.holds.others(history, finishing)
        want = min(study.max_parallel - in_flight - held, study.max_trials - created)
        if limit is not None:
            want = min(want, limit)
        if study.runner == "external":  # ask/tell: only suggest creates its trials
            want = 0
        suggestions: list[Suggestion] = []
        exhausted = created >= study.max_trials
        if want > 0:
            suggestions, exhausted = self._suggestions(study, history, want)
        if not suggestions:
            if exhausted and in_flight == 0:
                self._end(session, study, history)
            return []
        first = self._claim_numbering(session, study)
        if first is None:
            history.lookahead.spares.clear()
            return []  # stopped while the strategy was thinking
        return self._insert(session, study, suggestions, first, lease_to)

    def _suggestions(
        self, study: Study, history: HistoryMirror, want: int
    ) -> tuple[list[Suggestion], bool]:
        """``want`` suggestions (fewer when the strategy has no more) and whether the
        strategy is exhausted: spares asked ahead when they are still good, else an
        ask, for more than ``want`` when asks are the study's bottleneck
        (``server.lookahead``)."""
        look, created = history.lookahead, history.created
        finished = created - history.in_flight
        now = time.monotonic()
        spares = look.take(want, created, finished, study.max_parallel)
        if spares:
            look.fill_at(now)
            return spares, False
        strategy = self._strategy(study, history)
        count = look.ask_count(want, study.max_parallel, type(strategy).lookahead)
        started = time.perf_counter()
        answer = strategy.ask(min(count, study.max_trials - created))
        look.timed(time.perf_counter() - started, now)
        suggestions = answer[:want]
        if len(answer) > want:
            look.keep(answer[want:], created + want, finished)
        return suggestions, strategy.exhausted or not suggestions

    @staticmethod
    def _history(session: Session, study: Study) -> HistoryMirror:
        """The study's history mirror (the app's caches), brought up to date."""
        history = caches_of(session).get(HISTORY, study, lambda: HistoryMirror(study.id))
        history.refresh(session)
        return history

    def _end(self, session: Session, study: Study, history: HistoryMirror) -> None:
        """A study with its budget spent and nothing in flight: ``completed``, or
        ``failed`` with the reasons when not one of its trials gave a value."""
        if any(r.status in ("completed", "pruned") for r in history.records):
            if self._claim(session, study, "completed"):
                log.info("study %s completed with %d trial(s)", study.name, history.created)
                set_committed_value(study, "status", "completed")  # as the hook tells it
                emit(session, study, "study.completed")
            return
        reason = f"every trial failed; {common_reasons(session, study)}"
        if end_failed(session, study, reason):
            log.warning("study %s failed: %s", study.name, reason)

    def suggest(self, session: Session, study: Study, count: int) -> list[int]:
        """Ids of up to ``count`` queued trials for an ask/tell caller: trials already
        queued first (oldest first), then new ones from the strategy, never past the
        study's ``max_trials``. The caller starts (leases) them; the study must be
        running. Holds the scheduler's lock, so trial numbers never collide."""
        with self._lock:
            ids = list(
                session.scalars(
                    select(Trial.id)
                    .where(Trial.study_id == study.id, Trial.status == "queued")
                    .order_by(Trial.number)
                    .limit(count)
                ).all()
            )
            history = self._history(session, study)
            want = min(count - len(ids), study.max_trials - history.created)
            if want > 0:
                suggestions = self._strategy(study, history).ask(want)
                first = self._claim_numbering(session, study) if suggestions else None
                if first is not None:
                    ids += [row["id"] for row in self._insert(session, study, suggestions, first)]
            return ids

    def _insert(
        self,
        session: Session,
        study: Study,
        suggestions: Sequence[Suggestion],
        next_number: int,
        lease_to: str | None = None,
    ) -> list[dict[str, Any]]:
        """Store suggestions as queued trials numbered from ``next_number`` (from
        :meth:`_claim_numbering`); with ``lease_to`` the first is stored already
        started by that worker (attempt 1). Returns the rows as stored, each with its
        new ``id``."""
        now = utcnow()
        rows: list[dict[str, Any]] = [
            {
                "study_id": study.id,
                "number": next_number + i,
                "status": "queued",
                "created_at": now,
                "queued_at": now,
                "params": s.params,
                "info": s.info,
                "attempt": 0,
                "checkpoint": None,
                "checkpoint_step": None,
                # every row the same keys: one multi-row statement (insertmanyvalues)
                "started_at": None,
                "heartbeat_at": None,
                "worker": None,
            }
            for i, s in enumerate(suggestions)
        ]
        if lease_to is not None:
            # The very same ``now`` in created_at, started_at and heartbeat_at: that is
            # how a repeated finish recognises this lease (server.refill.handed_with).
            rows[0].update(
                status="running", attempt=1, started_at=now, heartbeat_at=now, worker=lease_to
            )
        self._continue_from_parents(session, study, rows)
        # One multi-row INSERT ... RETURNING in Core on the session's connection (the
        # ORM's unit of work, and even its bulk path, cost more than the statement).
        ids = session.connection().execute(_INSERT, rows).scalars().all()
        for row, trial_id in zip(rows, ids, strict=True):
            row["id"] = trial_id
        return rows

    @staticmethod
    def _continue_from_parents(session: Session, study: Study, rows: list[dict[str, Any]]) -> None:
        """A promoted configuration (``info["parent"]``, from Hyperband/ASHA) starts
        from its parent's checkpoint instead of epoch 1."""
        parents = {r["info"]["parent"] for r in rows if isinstance(r["info"].get("parent"), int)}
        if not parents:
            return
        found = {
            number: (path, step)
            for number, path, step in session.execute(
                select(Trial.number, Trial.checkpoint, Trial.checkpoint_step).where(
                    Trial.study_id == study.id, Trial.number.in_(parents)
                )
            )
        }
        for row in rows:
            path, step = found.get(row["info"].get("parent"), (None, None))
            if path:
                row["checkpoint"], row["checkpoint_step"] = path, step

    @staticmethod
    def _claim_numbering(session: Session, study: Study) -> int | None:
        """:meth:`_claim` the running study before inserting trials, and in the same
        statement read the number its next trial gets (after its last one); None when
        the study no longer runs. The caller holds the scheduler's lock, so no other
        insert can take that number before its own."""
        row = (
            session.connection()
            .execute(_CLAIM_NUMBERING, {"b_id": study.id, "b_now": utcnow()})
            .first()
        )
        if row is None:
            return None
        return 0 if row[0] is None else row[0] + 1

    @staticmethod
    def _claim(session: Session, study: Study, new_status: str) -> bool:
        """Compare-and-set on the study row: succeeds only while it is still running.

        Taking the row (and on SQLite the write lock) before inserting trials or
        completing means a concurrent stop either lands first, and we back off, or
        waits for our commit and then stops the trials we queued.
        """
        now = utcnow()
        values: dict = {"status": new_status, "updated_at": now}
        if new_status == "completed":
            values["finished_at"] = now
        # Core, on the session's connection: the ORM's bulk-update path cost more than
        # the statement (this runs on every finish).
        claimed = session.connection().execute(_CLAIM.values(values), {"b_id": study.id}).rowcount
        return claimed == 1

    @staticmethod
    def _strategy(study: Study, history: HistoryMirror) -> Strategy:
        spec = study.spec
        if history.space is None:  # a study's space never changes: parse it once
            history.space = SearchSpace.from_dict(spec["space"])
        return make_strategy(
            study.strategy,
            history.space,
            history.records,
            direction=study.direction,
            seed=study.seed,
            options=spec["strategy"].get("options") or {},
        )
