"""The worker side of the API: start an attempt, report steps, finish.

Paths are by trial id (what a queued job carries). Every answer is fenced by attempt:
a report or finish from a superseded attempt gets 409.
"""

from __future__ import annotations

import functools

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hpo.schemas import (
    FinishIn,
    FinishOut,
    HeartbeatIn,
    ReleaseIn,
    ReportBatchIn,
    ReportIn,
    ReportOut,
    StartIn,
    TrialDetail,
    TrialPublic,
    TrialSpec,
)
from server import trials
from server.api.deps import SchedulerDep, SessionDep, TrialId, in_session
from server.auth import require
from server.convert import trial_detail, trial_public
from server.refill import handed_with, refill
from server.tables import Study, Trial

router = APIRouter(prefix="/trials", tags=["trials"], dependencies=[Depends(require("worker"))])


@router.get("/{trial_id}", response_model=TrialDetail)
def get_trial(trial_id: TrialId, session: SessionDep) -> TrialDetail:
    trial = trials.get_trial(session, trial_id)
    reports = trials.trial_reports(session, trial)
    return trial_detail(trial, trial.study.name, reports)


@router.post("/{trial_id}/start", response_model=TrialSpec)
async def start_trial(trial_id: TrialId, body: StartIn, request: Request) -> TrialSpec:
    """Lease a new attempt of a queued trial; 409 if it is not queued."""
    settings = request.app.state.settings
    return await in_session(
        request,
        lambda session: trials.start_trial(
            session,
            trial_id,
            body.worker,
            heartbeat_interval=settings.heartbeat_interval,
            report_interval=settings.report_interval,
        ),
    )


@router.post("/{trial_id}/heartbeat", response_model=ReportOut)
async def heartbeat(trial_id: TrialId, body: HeartbeatIn, request: Request) -> ReportOut:
    """Renew the attempt's lease; 409 when the attempt is superseded or over."""
    return await in_session(request, lambda session: trials.heartbeat(session, trial_id, body))


@router.post("/{trial_id}/release", response_model=TrialPublic)
async def release_trial(
    trial_id: TrialId, body: ReleaseIn, request: Request, scheduler: SchedulerDep
) -> TrialPublic:
    """Hand the trial back unfinished (worker shutting down); it is queued again."""

    def work(session: Session) -> tuple[TrialPublic, str]:
        trial = trials.release_trial(session, trial_id, body)
        return trial_public(trial, trial.study.name), trial.study.runner

    out, runner = await in_session(request, work)
    # Committed: now it may travel (an ask/tell study's waits for the next suggest).
    if out.status == "queued" and runner == "workers":
        scheduler.queue.enqueue([out.id])
    return out


@router.post("/{trial_id}/reports", response_model=ReportOut)
async def report(trial_id: TrialId, body: ReportIn, request: Request) -> ReportOut:
    """Store a step's report (idempotent) and answer continue or stop."""
    return await in_session(request, lambda session: trials.record_report(session, trial_id, body))


@router.post("/{trial_id}/reports/batch", response_model=ReportOut)
async def report_batch(trial_id: TrialId, body: ReportBatchIn, request: Request) -> ReportOut:
    """Store several steps' reports of one attempt in order; ``stop`` if any says so."""
    return await in_session(request, lambda session: trials.record_reports(session, trial_id, body))


@router.post("/{trial_id}/finish", response_model=FinishOut)
async def finish_trial(
    trial_id: TrialId, body: FinishIn, request: Request, scheduler: SchedulerDep
) -> FinishOut:
    """End the attempt with a value or an error (idempotent per attempt); reports the
    worker held back (``reports``) are stored first, in the same transaction.

    Once that is committed the study's freed slot is refilled in this request (no wait
    for a scheduler pass); with ``lease_next`` the new trial may come back in
    ``next_trial``, already started for this worker, saving it a queue round trip and
    a start request. A repeat of that finish (same attempt and outcome: its answer
    was lost) gets the same ``next_trial`` again while the worker has not touched it
    (see :func:`server.refill.handed_with`), never a second one."""
    db = request.app.state.db
    settings = request.app.state.settings

    def spec_of(study: Study, trial: Trial) -> TrialSpec:
        return trials.trial_spec(
            study,
            trial,
            trial.attempt,
            heartbeat_interval=settings.heartbeat_interval,
            report_interval=settings.report_interval,
        )

    held: list[int] = []  # the trial whose freed slot this request holds, if any

    def finish() -> tuple[FinishOut, Study, bool]:
        with db.session() as session:
            trial, repeated = trials.finish_trial(session, trial_id, body)
            if not repeated and scheduler.active:
                # before the commit: no pass fills the freed slot ahead of our refill
                scheduler.holds.hold(trial.id, trial.study_id, trial.number)
                held.append(trial.id)
            return trial_public(trial, trial.study.name, FinishOut), trial.study, repeated

    def handed_again() -> TrialSpec | None:
        with db.session() as session:
            trial = session.get(Trial, trial_id)
            handed = None if trial is None else handed_with(session, trial)
            return None if handed is None else spec_of(trial.study, handed)

    def unit() -> FinishOut:
        # On PostgreSQL the finish's own transaction runs outside the scheduler's lock:
        # only the refill (which numbers new trials) needs it, and at hundreds of
        # finishes a second that lock is what bounds the service's throughput. SQLite
        # writes one transaction at a time anyway, and a writer that finds the file
        # locked sleeps in SQLite's busy handler: there, finishes queue on the lock
        # instead (measured ~10 % faster).
        if not db.is_sqlite:
            return finish_and_refill()
        with scheduler.exclusive():
            return finish_and_refill()

    def finish_and_refill() -> FinishOut:
        try:
            out, study, repeated = finish()
            # Without a scheduling thread (tests that schedule by hand) nothing is
            # refilled behind their back.
            if not scheduler.active:
                return out
            lease_to = (out.worker or "") if body.lease_next else None
            refill_it = functools.partial(
                refill, scheduler, study, finishing=trial_id, lease_to=lease_to, spec_of=spec_of
            )
            if repeated and lease_to is not None:
                # A repeat (its first answer was lost), under one hold of the lock:
                # the first request's refill has either committed (the trial it handed
                # over is found) or not run yet (this one refills the slot held for
                # it, for the same worker, and the first finds it taken): the worker
                # never misses a trial leased to it.
                with scheduler.exclusive():
                    out.next_trial = handed_again() or refill_it()
                return out
            out.next_trial = refill_it()
            return out
        finally:
            for tid in held:
                scheduler.holds.release(tid)

    return await run_in_threadpool(unit)
