"""The worker side of the API: start an attempt, report steps, finish.

Paths are by trial id (what a queued job carries). Every answer is fenced by attempt:
a report or finish from a superseded attempt gets 409.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hpo.logs import LogAck, LogChunkIn, TrialLog
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
from server import logs, trials
from server.api.deps import SchedulerDep, SessionDep, TrialId, in_session, trial_access
from server.auth import require
from server.convert import trial_detail, trial_public
from server.finish import Timing, finish

router = APIRouter(prefix="/trials", tags=["trials"], dependencies=[Depends(require("worker"))])
#: Ask/tell callers run trials with a user token: a member's role in the trial's project.
_READ = (Depends(trial_access("viewer")),)
_RUN = (Depends(trial_access("member")),)


@router.get("/{trial_id}", response_model=TrialDetail, dependencies=list(_READ))
def get_trial(trial_id: TrialId, session: SessionDep) -> TrialDetail:
    trial = trials.get_trial(session, trial_id)
    reports = trials.trial_reports(session, trial)
    return trial_detail(trial, trial.study.name, reports)


@router.post("/{trial_id}/start", response_model=TrialSpec, dependencies=list(_RUN))
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


@router.post("/{trial_id}/heartbeat", response_model=ReportOut, dependencies=list(_RUN))
async def heartbeat(trial_id: TrialId, body: HeartbeatIn, request: Request) -> ReportOut:
    """Renew the attempt's lease; 409 when the attempt is superseded or over."""
    return await in_session(request, lambda session: trials.heartbeat(session, trial_id, body))


@router.post("/{trial_id}/release", response_model=TrialPublic, dependencies=list(_RUN))
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


@router.post("/{trial_id}/reports", response_model=ReportOut, dependencies=list(_RUN))
async def report(trial_id: TrialId, body: ReportIn, request: Request) -> ReportOut:
    """Store a step's report (idempotent) and answer continue or stop."""
    return await in_session(request, lambda session: trials.record_report(session, trial_id, body))


@router.post("/{trial_id}/reports/batch", response_model=ReportOut, dependencies=list(_RUN))
async def report_batch(trial_id: TrialId, body: ReportBatchIn, request: Request) -> ReportOut:
    """Store several steps' reports of one attempt in order; ``stop`` if any says so."""
    return await in_session(request, lambda session: trials.record_reports(session, trial_id, body))


@router.post("/{trial_id}/finish", response_model=FinishOut, dependencies=list(_RUN))
async def finish_trial(
    trial_id: TrialId, body: FinishIn, request: Request, scheduler: SchedulerDep
) -> FinishOut:
    """End the attempt with a value or an error (idempotent per attempt); reports the
    worker held back (``reports``) are stored first, in the same transaction.

    Once that is committed the study's freed slot is refilled in this request (no wait
    for a scheduler pass); with ``lease_next`` the new trial may come back in
    ``next_trial``, already started for this worker, saving it a queue round trip and
    a start request. A repeat of that finish (same attempt and outcome: its answer
    was lost) gets the same ``next_trial`` again while the worker has not touched it,
    never a second one (:mod:`server.finish`)."""
    settings = request.app.state.settings
    timing = Timing(settings.heartbeat_interval, settings.report_interval)
    return await run_in_threadpool(finish, scheduler, trial_id, body, timing)


@router.post("/{trial_id}/logs", response_model=LogAck, dependencies=list(_RUN))
async def ship_log(trial_id: TrialId, body: LogChunkIn, request: Request) -> LogAck:
    """Store a chunk of what an attempt printed (idempotent per position); the server
    keeps each attempt's head and tail, ``HPO_LOG_MAX_BYTES`` in all."""
    cap = request.app.state.settings.log_max_bytes
    return await in_session(
        request, lambda session: logs.append_chunk(session, trial_id, body, cap=cap)
    )


Attempt = Annotated[
    int | None, Query(ge=1, le=1_000_000, description="Which attempt (default: the latest).")
]
After = Annotated[
    int, Query(ge=0, le=2**62, description="Only output after this byte (next_position).")
]


@router.get("/{trial_id}/logs", response_model=TrialLog, dependencies=list(_READ))
def get_log(
    trial_id: TrialId, session: SessionDep, attempt: Attempt = None, after: After = 0
) -> TrialLog:
    """What an attempt printed (stdout and stderr), from ``after`` on."""
    return logs.read_log(session, trials.get_trial(session, trial_id), attempt, after)
