"""The reaper and the reconciler: how lost work finds its way back.

*Reaper*: a ``running`` trial whose heartbeat is older than the heartbeat timeout (its
worker died, hung or lost the network), or that ran past its study's trial timeout, is
retried (back to ``queued``, counted in ``failures``; the next start is a new attempt that
resumes from the last checkpoint) or, past ``max_retries``, ``failed`` with the reason.
Each change is a compare-and-set on (status, attempt), so a heartbeat that lands first wins.

*Reconciler*: a ``queued`` trial that no live job holds (Redis flushed or restarted, an
enqueue that failed) is handed to the queue again. Trials of ask/tell studies
(``runner: external``) never go to the queue: retried, they wait for the next suggest.
Both only compute ids; the scheduler commits and enqueues.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from search.status import LIVE_STUDY
from server.db import changed_rows
from server.tables import Study, Trial
from server.webhooks import emit_for_trial

__all__ = ["reap_stale", "unheld_queued"]


def reap_stale(
    session: Session, now: datetime, heartbeat_timeout: float, listening_since: datetime
) -> list[int]:
    """Retry or fail every stale running trial; return the ids to enqueue again.

    Silence is counted from the last heartbeat or from ``listening_since`` (when this
    server started to answer), whichever is later: a worker cannot be heard while no
    server runs, and one that comes back within the timeout of a restart keeps its
    attempt (its buffered reports and finish are then accepted, not refused)."""
    cutoff = now - timedelta(seconds=heartbeat_timeout)
    rows = session.execute(
        select(
            Trial.id,
            Trial.attempt,
            Trial.failures,
            Trial.heartbeat_at,
            Trial.started_at,
            Study.status,
            Study.max_retries,
            Study.trial_timeout,
            Study.runner,
        )
        .join(Study, Study.id == Trial.study_id)
        # Every running trial (as many as there are busy workers): the per-study trial
        # timeout is simplest to compare here rather than in dialect-specific SQL.
        .where(Trial.status == "running")
    ).all()
    requeue: list[int] = []
    for tid, attempt, failures, beat, started, study_status, max_retries, timeout, runner in rows:
        beat = _aware(beat)
        started = _aware(started)
        timed_out = started is not None and (now - started).total_seconds() > timeout
        heard = listening_since if beat is None else max(beat, listening_since)
        silent = heard < cutoff
        if not (silent or timed_out):
            continue  # a live trial of a stopped study: it hears "stop" at its next report
        if timed_out:
            reason = f"attempt {attempt} ran past the trial timeout of {timeout:g}s"
        else:
            quiet = (now - heard).total_seconds()
            reason = f"attempt {attempt} lost: no heartbeat for {quiet:.1f}s"
        if study_status not in LIVE_STUDY:
            values = {"status": "stopped", "finished_at": now, "error": f"{reason}; study stopped"}
        elif failures + 1 > max_retries:
            values = {
                "status": "failed",
                "failures": failures + 1,
                "finished_at": now,
                "error": f"{reason}; no retries left (max_retries={max_retries})",
            }
        else:
            values = {
                "status": "queued",
                "failures": failures + 1,
                "queued_at": now,
                "error": f"{reason}; retry {failures + 1} of {max_retries}",
            }
        changed = changed_rows(
            session,
            update(Trial)
            .where(Trial.id == tid, Trial.status == "running", Trial.attempt == attempt)
            .values(**values)
            .execution_options(synchronize_session=False),
        )
        # An ask/tell study's trial waits in queued for its next suggest, never a worker.
        if changed == 1 and values["status"] == "queued" and runner == "workers":
            requeue.append(tid)
        if changed == 1 and values["status"] == "failed":
            emit_for_trial(session, tid, "trial.failed")
    return requeue


def unheld_queued(
    session: Session, now: datetime, grace: float, live: Collection[int]
) -> list[int]:
    """Queued trials of running studies run by workers, queued for over ``grace``
    seconds, that no live job holds (an ask/tell study's wait for their suggest)."""
    cutoff = now - timedelta(seconds=grace)
    ids = session.scalars(
        select(Trial.id)
        .join(Study, Study.id == Trial.study_id)
        .where(Trial.status == "queued", Study.status.in_(LIVE_STUDY))
        .where(Study.runner == "workers")
        .where(or_(Trial.queued_at.is_(None), Trial.queued_at < cutoff))
        .order_by(Trial.id)
    ).all()
    return [i for i in ids if i not in live]


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment
