"""The worker side of a trial's life: start (lease an attempt), report, finish.

Attempts are fenced: ``start`` atomically moves a ``queued`` trial to ``running`` and
bumps its attempt number; every report and finish must carry that number, and one from
any other attempt is refused (Conflict). Reports are idempotent on (trial, attempt, step),
finishes on (trial, attempt).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from hpo.artifacts import checkpoint_key
from hpo.schemas import (
    FinishIn,
    HeartbeatIn,
    ReleaseIn,
    ReportBatchIn,
    ReportIn,
    ReportOut,
    TrialSpec,
)
from hpo.spec import Objective, TrainSpec
from search.status import TERMINAL
from server.db import changed_rows, insert_ignore
from server.errors import Conflict, Invalid, NotFound
from server.handback import HAND_BACK, HANDBACKS
from server.stopping import stopping_decision
from server.tables import REPORTS, TRIALS, Report, Study, Trial, utcnow
from server.webhooks import emit

__all__ = [
    "Finish",
    "finish_trial",
    "get_trial",
    "get_trial_by_number",
    "heartbeat",
    "record_report",
    "record_reports",
    "release_trial",
    "start_trial",
    "trial_reports",
    "trial_spec",
]

#: Study statuses whose running trials are told to stop (stopped by a user, or failed:
#: fail-fast); their queued trials never start.
HALTED = ("stopped", "failed")


def get_trial(session: Session, trial_id: int) -> Trial:
    """The trial with its study loaded in the same statement (every caller reads the
    study: its status, settings or name; a lazy load would be a second round trip)."""
    trial = session.get(Trial, trial_id, options=[joinedload(Trial.study)])
    if trial is None:
        raise NotFound(f"no trial with id {trial_id}")
    return trial


def get_trial_by_number(session: Session, study: Study, number: int) -> Trial:
    trial = session.scalar(select(Trial).where(Trial.study_id == study.id, Trial.number == number))
    if trial is None:
        raise NotFound(f"study {study.name!r} has no trial number {number}")
    return trial


def trial_reports(session: Session, trial: Trial) -> list[Report]:
    """Every report of every attempt, in (attempt, step) order."""
    return list(
        session.scalars(
            select(Report).where(Report.trial_id == trial.id).order_by(Report.attempt, Report.step)
        ).all()
    )


def start_trial(
    session: Session,
    trial_id: int,
    worker: str | None,
    *,
    heartbeat_interval: float = 10.0,
    report_interval: float = 0.0,
) -> TrialSpec:
    """Lease the next attempt of a queued trial and return what the worker must run
    (resuming from the trial's last checkpoint when an earlier attempt left one).

    ``report_interval`` lets the worker batch reports when no report can change the
    trial's course (the study has no early-stopping rule); with a rule it is 0."""
    trial = get_trial(session, trial_id)
    study = trial.study
    if study.status in HALTED and trial.status == "queued":
        trial.status, trial.finished_at, trial.error = "stopped", utcnow(), f"study {study.status}"
        session.commit()  # keep the stop even though the request is refused
        raise Conflict(f"trial {trial_id} is stopped: its study {study.status}")
    if trial.status != "queued":
        raise Conflict(f"trial {trial_id} is {trial.status} (attempt {trial.attempt})")
    now = utcnow()
    attempt = trial.attempt + 1
    # Compare-and-set on status and attempt so two workers racing for one trial cannot
    # both win; the winner knows the row's new values without reading it back.
    claimed = changed_rows(
        session,
        update(Trial)
        .where(Trial.id == trial_id, Trial.status == "queued", Trial.attempt == trial.attempt)
        .values(
            status="running",
            attempt=attempt,
            started_at=now,
            heartbeat_at=now,
            worker=worker,
            error=None,
        )
        .execution_options(synchronize_session=False),
    )
    if claimed != 1:
        session.expire(trial)
        raise Conflict(f"trial {trial_id} was started by another worker")
    return trial_spec(
        study,
        trial,
        attempt,
        heartbeat_interval=heartbeat_interval,
        report_interval=report_interval,
    )


def trial_spec(
    study: Study,
    trial: Trial,
    attempt: int,
    *,
    heartbeat_interval: float,
    report_interval: float,
) -> TrialSpec:
    """What a worker must run for ``attempt`` of ``trial`` (the answer to a start, or
    the next trial leased with a finish). Reads only the rows given: no query."""
    spec = study.spec
    train = TrainSpec.model_validate(spec["train"])
    return TrialSpec(
        trial_id=trial.id,
        study=study.name,
        number=trial.number,
        attempt=attempt,
        params={**train.params, **trial.params},
        train=train,
        # Multi-fidelity strategies give each trial its own budget of epochs.
        epochs=int((trial.info or {}).get("budget") or spec["budget"]["epochs"]),
        objective=Objective(metric=study.metric, direction=study.direction),
        seed=(study.seed + trial.number) % 2**32,
        heartbeat_interval=heartbeat_interval,
        timeout=study.trial_timeout,
        checkpoint=trial.checkpoint,
        checkpoint_step=trial.checkpoint_step,
        report_interval=0.0 if spec.get("stopping") else report_interval,
    )


def _check_attempt(trial: Trial, attempt: int) -> None:
    if attempt != trial.attempt:
        raise Conflict(
            f"attempt {attempt} of trial {trial.id} is not the current one "
            f"(current attempt is {trial.attempt}, status {trial.status})",
            field="attempt",
        )


def _decision(trial: Trial) -> ReportOut:
    if trial.study.status in HALTED:
        return ReportOut(decision="stop", reason=f"study {trial.study.status}")
    asked = (trial.info or {}).get(HAND_BACK)
    if asked:
        return ReportOut(decision="continue", hand_back=True, reason=f"{asked} needs the slot")
    return ReportOut(decision="continue")


def heartbeat(session: Session, trial_id: int, body: HeartbeatIn) -> ReportOut:
    """Renew the lease of the current attempt; answers like a report (stop when the
    study was stopped). A superseded or finished attempt gets Conflict: stop working."""
    trial = get_trial(session, trial_id)
    _check_attempt(trial, body.attempt)
    if trial.status != "running":
        raise Conflict(f"trial {trial_id} is {trial.status}; the lease is over")
    trial.heartbeat_at = utcnow()
    return _decision(trial)


def release_trial(session: Session, trial_id: int, body: ReleaseIn) -> Trial:
    """Hand a running trial back to the queue (not a failure: the worker is leaving).

    The next attempt resumes from the last checkpoint. Idempotent per attempt.
    """
    trial = get_trial(session, trial_id)
    _check_attempt(trial, body.attempt)
    if trial.status != "running":
        return trial
    if trial.study.status in HALTED:
        trial.status, trial.finished_at = "stopped", utcnow()
        trial.error = f"study {trial.study.status}"
        return trial
    trial.status = "queued"
    trial.queued_at = utcnow()
    info = dict(trial.info or {})
    asked = info.pop(HAND_BACK, None)
    if asked:  # asked by the server: counted apart from failures and retries
        info[HANDBACKS] = int(info.get(HANDBACKS, 0)) + 1
        trial.info = info
        trial.error = f"attempt {trial.attempt} handed back at a checkpoint: {asked} needs the slot"
    else:
        trial.error = f"attempt {trial.attempt} handed back: {body.reason}"
    return trial


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: The trial columns a stored report advances (see :func:`_advance`).
ADVANCED = ("last_step", "checkpoint", "checkpoint_step")


def _advance(state: dict[str, Any], body: ReportIn, trial: Trial) -> None:
    """Advance ``state`` (the trial's :data:`ADVANCED` values) past a stored report:
    its step, and its checkpoint when it carries one (filed under the trial's own
    artifact folder: the report names it relative to that folder)."""
    if state["last_step"] is None or body.step > state["last_step"]:
        state["last_step"] = body.step
    if body.checkpoint and (
        state["checkpoint_step"] is None or body.step >= state["checkpoint_step"]
    ):
        key = checkpoint_key(trial.study.name, trial.number, body.checkpoint)
        state["checkpoint"], state["checkpoint_step"] = key, body.step


def _store_report(session: Session, trial: Trial, body: ReportIn) -> None:
    """Insert one report (once per trial, attempt and step) and advance the trial's
    last step and checkpoint."""
    _insert_report(session, trial, body)
    state = {key: getattr(trial, key) for key in ADVANCED}
    _advance(state, body, trial)
    for key, value in state.items():
        if value != getattr(trial, key):
            setattr(trial, key, value)


def _insert_report(session: Session, trial: Trial, body: ReportIn) -> None:
    """The report's row, once per trial, attempt and step (a repeat is ignored)."""
    insert_ignore(
        session,
        REPORTS,
        {
            "trial_id": trial.id,
            "attempt": body.attempt,
            "step": body.step,
            "value": _finite_or_none(body.value),
            "metrics": {k: _finite_or_none(v) for k, v in body.metrics.items()},
            "created_at": utcnow(),
        },
        ["trial_id", "attempt", "step"],
    )


def _objective(trial: Trial, body: ReportIn, field: str) -> tuple[ReportIn, str | None]:
    """The report with its objective value, and why the trial diverged (else None).

    A report without ``value`` takes ``metrics[<the study's metric>]``; with neither,
    Invalid names ``field``. A value that is not finite (NaN, inf) is a diverged
    training: the report is stored (its value as null) and the trial fails."""
    metric = trial.study.metric
    value = body.value
    if value is None:
        given = body.metrics.get(metric)
        if isinstance(given, bool) or not isinstance(given, int | float):
            raise Invalid(
                f"{field}: missing: send the objective {metric!r} (the study's metric) "
                f"as 'value' or in 'metrics'",
                field=field,
            )
        value = float(given)
        body = body.model_copy(update={"value": value})
    if not math.isfinite(value):
        return body, f"objective {metric!r} is {value} at step {body.step}: training diverged"
    return body, None


def _fail_attempt(session: Session, trial: Trial, error: str) -> None:
    """End the running attempt as failed, fenced on it still running (a reaper that
    took it first wins: Conflict)."""
    ended = {"status": "failed", "value": None, "error": error, "finished_at": utcnow()}
    ended |= {key: getattr(trial, key) for key in ADVANCED}
    written = (
        session.connection()
        .execute(_END.values(ended), {"b_trial_id": trial.id, "b_attempt": trial.attempt})
        .rowcount
    )
    if written != 1:
        raise Conflict(f"attempt {trial.attempt} of trial {trial.id} ended meanwhile")
    for key, stored in ended.items():
        set_committed_value(trial, key, stored)
    emit(session, trial.study, "trial.failed", trial)


def record_report(
    session: Session, trial_id: int, body: ReportIn, *, field: str = "value"
) -> ReportOut:
    """Store one step's report (once) and answer continue or stop. A report whose
    objective is not finite fails the trial (``training diverged``) and answers stop;
    one without an objective is Invalid, naming ``field``."""
    trial = get_trial(session, trial_id)
    _check_attempt(trial, body.attempt)
    if trial.status != "running":
        raise Conflict(f"trial {trial_id} is {trial.status}; reports are closed")
    body, diverged = _objective(trial, body, field)
    _store_report(session, trial, body)
    trial.heartbeat_at = utcnow()
    if diverged is not None:
        session.flush()
        _fail_attempt(session, trial, diverged)
        return ReportOut(decision="stop", reason=diverged)
    decision = _decision(trial)
    if decision.decision == "continue":
        session.flush()  # the report just stored counts toward this trial's best so far
        reason = stopping_decision(session, trial.study, trial, body.step)
        if reason:
            return ReportOut(decision="stop", reason=reason)
    return decision


def record_reports(session: Session, trial_id: int, body: ReportBatchIn) -> ReportOut:
    """Store several reports in order (each once); the answer is ``stop`` when any of
    them was answered ``stop`` (the first such reason), else ``continue``."""
    answer = ReportOut(decision="continue")
    for i, report in enumerate(body.reports):
        decided = record_report(session, trial_id, report, field=f"reports.{i}.value")
        if decided.decision == "stop" and answer.decision == "continue":
            answer = decided
        answer.hand_back = answer.hand_back or decided.hand_back
        if get_trial(session, trial_id).status != "running":  # it diverged: the rest is moot
            break
    return answer


_TRIALS = TRIALS
_END = _TRIALS.update().where(
    _TRIALS.c.id == bindparam("b_trial_id"),
    _TRIALS.c.attempt == bindparam("b_attempt"),
    _TRIALS.c.status == "running",
)


class Finish(NamedTuple):
    """What a finish request did: the trial as stored, and whether the request only
    repeated an earlier finish of the same attempt with the same outcome (nothing was
    written; the worker may have lost the first answer and sent it again)."""

    trial: Trial
    repeated: bool


def _outcome(
    body: FinishIn, study_stopped: bool, reported: float | None = None
) -> tuple[str, float | None, str | None]:
    """The (status, value, error) a finish stores: ``completed`` without a value takes
    ``reported`` (the trial's last reported objective, of any attempt), and without
    that either becomes ``failed`` with the reason; a value that is not finite fails;
    ``pruned`` in a stopped study becomes ``stopped``. Pure, so a repeated finish can
    be compared with what its first one stored."""
    status: str = body.status
    value, error = body.value, body.error
    if value is not None and not math.isfinite(value):
        status, error, value = "failed", error or f"objective value is not finite: {value}", None
    elif status == "completed" and value is None:
        value = reported
    if status == "completed" and value is None:
        status, error = "failed", error or "completed without an objective value"
    if status == "failed" and not error:
        error = "the worker reported a failure without a reason"
    if status == "pruned" and study_stopped:
        status = "stopped"
    return status, value, error


def _last_reported(session: Session, trial: Trial, body: FinishIn) -> float | None:
    """The trial's last reported objective value, over all its attempts (the report of
    the highest step; of two attempts at one step, the later), when ``body`` completes
    without a value of its own; else None without a query.

    An attempt that resumes from a checkpoint of the trial's last step has nothing left
    to train or report: the value an earlier attempt reported there is the trial's."""
    if body.status != "completed" or body.value is not None:
        return None
    return session.scalar(
        select(Report.value)
        .where(Report.trial_id == trial.id, Report.value.is_not(None))
        .order_by(Report.step.desc(), Report.attempt.desc())
        .limit(1)
    )


def finish_trial(session: Session, trial_id: int, body: FinishIn) -> Finish:
    """End the current attempt. A ``completed`` finish without a finite value is stored
    as ``failed`` with the reason. Repeating the same attempt's finish is a no-op,
    answered with the trial as stored (no error). ``repeated`` is True only when what
    was stored is what this finish asks for (the same status, value and error: a
    retry of the same request); an attempt that ended otherwise (failed by the reaper,
    say) or with another outcome answers False."""
    trial = get_trial(session, trial_id)
    _check_attempt(trial, body.attempt)
    if trial.status in TERMINAL:  # idempotent: this attempt already ended
        # "stopped" is what a pruned finish stores in a stopped study: compare with the
        # outcome it had then, whatever the study's status is now.
        stored = (trial.status, trial.value, trial.error)
        asked = _outcome(body, trial.status == "stopped", _last_reported(session, trial, body))
        return Finish(trial, stored == asked)
    if trial.status != "running":
        raise Conflict(f"trial {trial_id} is {trial.status}; it was never started")
    # The trial object is not touched until the write below: a change to it would be
    # flushed (a unit of work) before the next statement.
    state = {key: getattr(trial, key) for key in ADVANCED}
    diverged = None
    for i, report in enumerate(body.reports):  # batched reports travel with the finish
        _check_attempt(trial, report.attempt)
        report, why = _objective(trial, report, f"reports.{i}.value")
        _insert_report(session, trial, report)
        _advance(state, report, trial)
        diverged = diverged or why
    status, value, error = _outcome(
        body, trial.study.status == "stopped", _last_reported(session, trial, body)
    )
    if diverged is not None:
        status, value, error = "failed", None, diverged
    ended = {"status": status, "value": value, "error": error, "finished_at": utcnow(), **state}
    # One Core UPDATE, fenced on the attempt still running, instead of a unit-of-work
    # flush (a finish is the hottest write: the flush cost ~5 % of the server's time).
    written = (
        session.connection()
        .execute(_END.values(ended), {"b_trial_id": trial.id, "b_attempt": trial.attempt})
        .rowcount
    )
    if written != 1:  # the reaper took the attempt between the read and this write
        raise Conflict(
            f"attempt {body.attempt} of trial {trial_id} ended meanwhile", field="attempt"
        )
    for key, stored in ended.items():
        set_committed_value(trial, key, stored)
    if status == "failed":
        emit(session, trial.study, "trial.failed", trial)
    return Finish(trial, repeated=False)
