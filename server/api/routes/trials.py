"""The worker side of the API: start an attempt, report steps, finish.

Paths are by trial id (what a queued job carries). Every answer is fenced by attempt:
a report or finish from a superseded attempt gets 409.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from hpo.schemas import (
    FinishIn,
    HeartbeatIn,
    ReleaseIn,
    ReportIn,
    ReportOut,
    StartIn,
    TrialDetail,
    TrialPublic,
    TrialSpec,
)
from server import trials
from server.api.deps import SchedulerDep, SessionDep, TrialId
from server.auth import require
from server.convert import trial_detail, trial_public

router = APIRouter(prefix="/trials", tags=["trials"], dependencies=[Depends(require("worker"))])


@router.get("/{trial_id}", response_model=TrialDetail)
def get_trial(trial_id: TrialId, session: SessionDep) -> TrialDetail:
    trial = trials.get_trial(session, trial_id)
    reports = trials.trial_reports(session, trial)
    return trial_detail(trial, trial.study.name, reports)


@router.post("/{trial_id}/start", response_model=TrialSpec)
def start_trial(
    trial_id: TrialId, body: StartIn, session: SessionDep, request: Request
) -> TrialSpec:
    """Lease a new attempt of a queued trial; 409 if it is not queued."""
    interval = request.app.state.settings.heartbeat_interval
    return trials.start_trial(session, trial_id, body.worker, heartbeat_interval=interval)


@router.post("/{trial_id}/heartbeat", response_model=ReportOut)
def heartbeat(trial_id: TrialId, body: HeartbeatIn, session: SessionDep) -> ReportOut:
    """Renew the attempt's lease; 409 when the attempt is superseded or over."""
    return trials.heartbeat(session, trial_id, body)


@router.post("/{trial_id}/release", response_model=TrialPublic)
def release_trial(
    trial_id: TrialId, body: ReleaseIn, session: SessionDep, scheduler: SchedulerDep
) -> TrialPublic:
    """Hand the trial back unfinished (worker shutting down); it is queued again."""
    trial = trials.release_trial(session, trial_id, body)
    out = trial_public(trial, trial.study.name)
    requeue = trial.status == "queued"
    session.commit()
    if requeue:
        scheduler.queue.enqueue([trial.id])
    return out


@router.post("/{trial_id}/reports", response_model=ReportOut)
def report(trial_id: TrialId, body: ReportIn, session: SessionDep) -> ReportOut:
    """Store a step's report (idempotent) and answer continue or stop."""
    return trials.record_report(session, trial_id, body)


@router.post("/{trial_id}/finish", response_model=TrialPublic)
def finish_trial(
    trial_id: TrialId, body: FinishIn, session: SessionDep, scheduler: SchedulerDep
) -> TrialPublic:
    """End the attempt with a value or an error (idempotent per attempt)."""
    trial = trials.finish_trial(session, trial_id, body)
    out = trial_public(trial, trial.study.name)
    session.commit()
    scheduler.wake()
    return out
