"""A finish's hand-over: the finished trial's study refilled at once, and the trial a
finish handed to its worker found again when that finish is repeated.

A finish request (``POST /trials/{id}/finish``) frees a slot of its study's pool.
Instead of waiting for a scheduler pass, the request refills that slot itself
(:func:`refill`: by fair share, ``server.dispatch``) once its own transaction has
committed, holding the scheduler's lock (``Scheduler.exclusive()``) for the refill
only: the lock serializes every refill and pass, so whatever it covers bounds the
service's throughput. With ``lease_next`` the refill's first new trial goes straight
to the finishing worker, already started (attempt 1), in the answer's
``next_trial``. The freed slot is held for that refill from before the finish
commits (``server.holds``), so neither a pass nor a concurrent finish's refill takes
it in between.

If that answer is lost, the worker repeats the finish (same attempt, same outcome).
The repeat frees no slot, so it refills nothing; :func:`handed_with` finds in the
database the trial the first answer carried, so the repeat can carry it again instead
of leaving it ``running`` with no one running it until the reaper retries it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from hpo.schemas import TrialSpec
from server.dispatch import serve_pool, slot_size
from server.scheduler import Scheduler
from server.tables import Report, Study, Trial, utcnow

__all__ = ["LEASE_GRACE", "handed_with", "refill"]

log = logging.getLogger(__name__)
#: Seconds a queued trial may wait before a finishing worker takes it in turn instead
#: of being leased its study's next trial (see ``_queue_waits``).
LEASE_GRACE = 1.0


def refill(
    scheduler: Scheduler,
    study: Study,
    *,
    finishing: int | None = None,
    lease_to: str | None = None,
    spec_of: Callable[[Study, Trial], TrialSpec] | None = None,
) -> TrialSpec | None:
    """Refill the slot a trial of ``study`` just freed, at once, in its own transaction:
    what a pass does for that study's pool, without a pass over every pool. With fair
    share (``server.dispatch``) the slot goes to the pool's study furthest below its
    share, which need not be ``study``; else (``fifo``, or a pool no worker serves
    yet) ``study`` is topped up. ``study`` may come from the caller's finished
    session (its settings are only read; a claim on a study's row re-checks that it
    still runs). ``finishing``: the trial whose finish this refill follows; the slot
    held for it (``Scheduler.holds``) may be taken, those held for other finishes may
    not.

    With ``lease_to`` (and ``spec_of`` to describe it), the first new trial goes
    straight to that worker, started (attempt 1), and its spec is returned; it is
    not enqueued. That happens only when no trial of the pool has waited in
    ``queued`` (past a short grace), so a worker that keeps asking never jumps the
    queue. Every other new trial is enqueued after the commit, as a pass does. Never
    raises: on any error the scheduler is woken to do it in a full pass.

    Takes ``scheduler.exclusive()`` itself (reentrant: a caller holding it across
    the finish keeps it).
    """
    try:
        leased: tuple[Study, dict[str, Any]] | None = None
        with scheduler.exclusive():
            with scheduler.db.session() as session:
                if lease_to is not None and (
                    spec_of is None
                    or _queue_waits(scheduler, session, study.pool, slot_size(study.gpus))
                ):
                    lease_to = None
                served = _serve(scheduler, session, study, lease_to, finishing)
                ids = []
                for owner, rows in served:
                    for row in rows:
                        if leased is None and row["status"] == "running":
                            leased = (owner, row)
                        else:
                            ids.append(row["id"])
        # Committed; the rest needs no lock (whatever the lock covers bounds throughput).
        if ids:
            scheduler.queue.enqueue(ids)
        if leased is None or spec_of is None:
            return None
        return spec_of(leased[0], Trial(**leased[1]))  # the row as inserted: no read back
    except Exception:  # the database keeps them queued; a pass (or recovery) retries
        log.exception("refilling after study %s failed; waking the scheduler", study.id)
        scheduler.wake()
        return None


def _serve(
    scheduler: Scheduler,
    session: Session,
    study: Study,
    lease_to: str | None,
    finishing: int | None,
) -> list[tuple[Study, list[dict[str, Any]]]]:
    """The refill's fill: the pool by fair share, else the study alone; either way
    ``study`` is completed when this was its last trial."""
    served = None
    if scheduler.dispatch == "fair":
        served = serve_pool(
            scheduler,
            session,
            study.pool,
            lease_to=lease_to,
            lease_size=slot_size(study.gpus),
            finishing=finishing,
            ended=study.id,
        )
    if study.status != "running":
        return served or []
    if served is None:
        return [(study, scheduler.fill(session, study, lease_to, finishing=finishing))]
    if all(owner.id != study.id for owner, _ in served):
        scheduler.fill(session, study, limit=0)  # nothing new for it: ends it if done
    return served


#: Seconds a "nothing waits" answer of ``_queue_waits`` is reused: at hundreds of
#: finishes a second the query was ~6 % of the server's time, and a trial that starts to
#: wait is seen at most this much later (it waits ``LEASE_GRACE`` + this, not forever).
QUEUE_CHECK_TTL = 0.1
_WAITING = (
    select(Study.gpus)
    .join(Trial, Trial.study_id == Study.id)
    .where(
        Trial.status == "queued",
        Trial.queued_at < bindparam("cutoff"),
        Study.pool == bindparam("pool"),
        Study.runner == "workers",
    )
    .distinct()
)


def _queue_waits(scheduler: Scheduler, session: Session, pool: str, size: float) -> bool:
    """Whether some trial of ``pool`` of ``size`` slots (what the finishing worker
    holds: it could take no other) has waited for a worker longer than
    ``LEASE_GRACE``.

    Only those count: a trial queued moments ago is most likely being started by
    the worker that took it from the queue (counting it would turn every finish
    into a plain enqueue, the queue never quite empty); one that waits longer has
    no free worker, and the finisher goes back to the queue to take it in turn.
    A bigger trial waiting for room on some machine is no reason to: a one-GPU
    finisher could not take it. "Nothing waits" is reused for ``QUEUE_CHECK_TTL``
    seconds per pool and size (callers hold the scheduler's lock, so the memo needs
    none of its own).
    """
    now = time.monotonic()
    if now - scheduler.nothing_waited_at.get((pool, size), -1.0) < QUEUE_CHECK_TTL:
        return False
    cutoff = utcnow() - timedelta(seconds=LEASE_GRACE)
    waiting = session.scalars(_WAITING, {"cutoff": cutoff, "pool": pool})
    if any(slot_size(gpus) == size for gpus in waiting):
        return True  # not reused: the finisher goes to the queue until nothing waits
    scheduler.nothing_waited_at[(pool, size)] = now
    return False


def handed_with(session: Session, finished: Trial) -> Trial | None:
    """The trial a finish of ``finished`` handed to its worker (``next_trial``) if the
    worker cannot have learned of it yet; else None. For a repeated finish (its first
    answer may have been lost): handing the same trial again to the same worker is
    safe, it is the same lease.

    Recognised from the database alone (no column records the hand-over): a trial
    (of any study: fair share may have handed over another study's), ``running`` at
    attempt 1 for the same (named) worker, started in
    the very statement that created it (``started_at == created_at``: only a lease at
    creation does that; a start from the queue comes later, and any restart makes
    attempt 2), no earlier than ``finished`` ended (the refill ran after the finish
    committed), and untouched since: no heartbeat (``heartbeat_at`` is still its
    ``started_at``; a report renews it too), no step, no report. If several match, the
    earliest is the one this finish handed (a later one was handed by a later finish,
    which the worker could only send after learning of the earlier trial).

    Never another worker's trial: a worker is known by name, and a trial finished by
    an unnamed worker recognises nothing (its name would match every unnamed worker).
    """
    worker = finished.worker
    if not worker or finished.finished_at is None:
        return None
    reported = exists().where(Report.trial_id == Trial.id)
    return session.scalar(
        select(Trial)
        .where(
            Trial.status == "running",
            Trial.attempt == 1,
            Trial.worker == worker,
            Trial.started_at == Trial.created_at,
            Trial.started_at >= finished.finished_at,
            Trial.heartbeat_at == Trial.started_at,
            Trial.last_step.is_(None),
            ~reported,
        )
        .order_by(Trial.started_at, Trial.id)
        .limit(1)
    )
