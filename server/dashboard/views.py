"""What the dashboard's templates show, computed from the same queries the API uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpo.schemas import TrialDetail, WorkerPublic
from search.status import OPEN
from server import pools, studies
from server.outcome import failure_streak, max_consecutive_failures, reason_groups
from server.tables import Study, Trial

__all__ = ["study_view", "trial_view", "worker_rows"]

#: Running trials listed in a study's header (the trials table has the rest).
RUNNING_SHOWN = 20


def study_view(
    session: Session, study: Study, heartbeat_timeout: float | None = None
) -> dict[str, Any]:
    """The study header: public summary, progress, best trial, running trials; with
    ``heartbeat_timeout``, also why it waits when its pool has no worker."""
    public = studies.study_public(session, study)
    if heartbeat_timeout is not None:
        public.waiting = pools.waiting_reason(session, study, heartbeat_timeout)
    finished = sum(n for status, n in public.counts.items() if status not in OPEN)
    running = session.execute(
        select(Trial.number, Trial.worker, Trial.last_step, Trial.info)
        .where(Trial.study_id == study.id, Trial.status == "running")
        .order_by(Trial.number)
        .limit(RUNNING_SHOWN)
    ).all()
    failed = public.counts.get("failed", 0)
    fail_fast = max_consecutive_failures(study)
    return {
        "public": public,
        "finished": finished,
        # The failure banner: how many failed, the reasons grouped, where fail-fast is.
        "failures": reason_groups(session, study, shown=5) if failed else [],
        "fail_fast": fail_fast,
        "streak": failure_streak(session, study, fail_fast) if failed and fail_fast else 0,
        "running": [
            {"number": n, "worker": w, "last_step": step, "budget": (info or {}).get("budget")}
            for n, w, step, info in running
        ],
        "epochs": (public.spec.get("budget") or {}).get("epochs"),
    }


def trial_view(detail: TrialDetail, checkpoint: str | None, metric: str) -> dict[str, Any]:
    """A trial page: its detail, one summary row per attempt, the checkpoint path."""
    attempts: dict[int, list[Any]] = {}
    for report in detail.reports:
        attempts.setdefault(report.attempt, []).append(report)
    rows = [
        {
            "attempt": attempt,
            "reports": len(reports),
            "first_step": reports[0].step,
            "last_step": reports[-1].step,
            "last_value": reports[-1].value,
            "from": reports[0].created_at,
            "to": reports[-1].created_at,
        }
        for attempt, reports in sorted(attempts.items())
    ]
    duration = None
    if detail.started_at and detail.finished_at:
        duration = (detail.finished_at - detail.started_at).total_seconds()
    return {
        "d": detail,
        "attempts": rows,
        "checkpoint": checkpoint,
        "metric": metric,
        "duration": duration,
    }


def worker_rows(session: Session, workers: Sequence[WorkerPublic]) -> list[dict[str, Any]]:
    """Workers with links to the trials they run (study name and trial number)."""
    ids = {tid for w in workers for tid in w.current_trials}
    where: dict[int, tuple[str, int]] = {}
    if ids:
        for tid, name, number in session.execute(
            select(Trial.id, Study.name, Trial.number)
            .join(Study, Study.id == Trial.study_id)
            .where(Trial.id.in_(ids))
        ):
            where[tid] = (name, number)
    return [{"w": w, "trials": [where[t] for t in w.current_trials if t in where]} for w in workers]
