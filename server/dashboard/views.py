"""What the dashboard's templates show, computed from the same queries the API uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpo.schemas import TrialDetail, WorkerPublic
from search.base import TrialRecord
from search.pbt import lineage
from search.status import OPEN
from server import pools, studies
from server.outcome import failure_streak, max_consecutive_failures, reason_groups
from server.tables import Study, Trial

__all__ = ["population_view", "study_view", "trial_view", "worker_rows"]

#: Running trials listed in a study's header (the trials table has the rest).
RUNNING_SHOWN = 20
#: Copies (PBT exploit steps) listed in a study's header, newest first.
COPIES_SHOWN = 30


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
    best = public.best_trial.number if public.best_trial else None
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
        "population": population_view(session, study, best),
    }


def population_view(session: Session, study: Study, best: int | None) -> dict[str, Any] | None:
    """A PBT study's population (None for other strategies): ``schedule``, the segments
    that led to trial ``best`` (its lineage, first segment first: which member trained
    it, epochs, value, whether it copied another member, and the parameters that
    changed along it), and ``copies``, the latest exploit steps (member k copied member
    j's trial at epoch e, when)."""
    if (study.spec.get("strategy") or {}).get("name") != "pbt":
        return None
    rows = session.execute(
        select(Trial.number, Trial.status, Trial.value, Trial.params, Trial.info, Trial.created_at)
        .where(Trial.study_id == study.id)
        .order_by(Trial.number)
    ).all()
    records = [TrialRecord(n, p or {}, st, v, info=i or {}) for n, st, v, p, i, _ in rows]
    created = {row[0]: row[5] for row in rows}
    by_number = {r.number: r for r in records}
    chain = lineage(records, best) if best is not None else []
    changing = sorted({k for t in chain for k in t.params if t.params[k] != chain[0].params[k]})
    schedule = [
        {
            "number": t.number,
            "member": t.info.get("member"),
            "first_epoch": _start_epoch(t, by_number),
            "budget": t.info.get("budget"),
            "value": t.value,
            "copied_from": t.info.get("copied_from"),
            "params": {k: t.params[k] for k in changing or t.params},
        }
        for t in chain
    ]
    copies = [
        {
            "number": t.number,
            "member": t.info.get("member"),
            "copied_from": t.info.get("copied_from"),
            "parent": t.info.get("parent"),
            "at_epoch": _start_epoch(t, by_number) - 1,
            "when": created[t.number],
        }
        for t in reversed(records)
        if t.info.get("source") == "exploit"
    ][:COPIES_SHOWN]
    members = {t.info.get("member") for t in records if isinstance(t.info.get("member"), int)}
    return {"schedule": schedule, "copies": copies, "members": len(members)}


def _start_epoch(trial: TrialRecord, by_number: dict[int, TrialRecord]) -> int:
    """The first epoch a segment trains: one past its parent's budget (1 without one)."""
    parent = by_number.get(trial.info.get("parent"))  # type: ignore[arg-type]
    budget = parent.info.get("budget") if parent is not None else None
    return budget + 1 if isinstance(budget, int) else 1


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
