"""The job function: ``run_trial(trial_id)`` runs one attempt of one trial.

A job carries only a trial id. Everything else comes from the server over HTTP: the
trial's spec and attempt number at start, a continue/stop decision after every epoch's
report. The function never raises for a trial's own failure (bad parameters, NaN loss):
it finishes the trial as ``failed`` with the reason, so the study goes on.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import traceback

from hpo.client import APIError, Client, Conflict
from hpo.schemas import FinishIn, ReportIn
from models import EpochMetrics, NonFiniteLossError
from worker.bridge import objective_of, run_training

__all__ = ["run_trial", "worker_name"]

log = logging.getLogger(__name__)


def worker_name() -> str:
    """How this process names itself to the server: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_trial(trial_id: int, *, client: Client | None = None, device: str | None = None) -> str:
    """Run one attempt of ``trial_id`` and return the status it ended with.

    Returns ``"skipped"`` when the server refuses the start (the trial is no longer
    queued: stopped, or already taken by another attempt).
    """
    own_client = client is None
    client = client or Client()
    try:
        return _run(client, trial_id, device)
    finally:
        if own_client:
            client.close()


def _run(client: Client, trial_id: int, device: str | None) -> str:
    try:
        spec = client.start_trial(trial_id, worker=worker_name())
    except Conflict as err:
        log.info("trial %s not started: %s", trial_id, err.message)
        return "skipped"
    attempt = spec.attempt
    metric = spec.objective.metric
    last_value: float | None = None
    stopped = False

    def on_epoch(metrics: EpochMetrics) -> bool:
        nonlocal last_value, stopped
        value = objective_of(metrics, metric)
        last_value = value
        answer = client.report(
            trial_id,
            ReportIn(attempt=attempt, step=metrics.epoch, value=value, metrics=metrics.as_dict()),
        )
        stopped = answer.decision == "stop"
        return stopped

    try:
        run_training(spec, on_epoch, device=device)
    except Conflict as err:  # superseded while running: a newer attempt owns the trial
        log.warning("trial %s attempt %s fenced off: %s", trial_id, attempt, err.message)
        return "superseded"
    except NonFiniteLossError as err:
        return _finish(client, trial_id, attempt, "failed", None, str(err))
    except (ValueError, KeyError) as err:
        return _finish(client, trial_id, attempt, "failed", None, f"invalid trial: {err}")
    except APIError:
        raise  # the server is unreachable or refused us: let the executor log it
    except Exception as err:  # a crash in training ends this trial, not the worker
        log.exception("trial %s crashed", trial_id)
        tail = "".join(traceback.format_exception_only(type(err), err)).strip()
        return _finish(client, trial_id, attempt, "failed", None, f"training crashed: {tail}")
    if last_value is None or not math.isfinite(last_value):
        return _finish(client, trial_id, attempt, "failed", None, "no finite objective value")
    status = "pruned" if stopped else "completed"
    return _finish(client, trial_id, attempt, status, last_value, None)


def _finish(
    client: Client,
    trial_id: int,
    attempt: int,
    status: str,
    value: float | None,
    error: str | None,
) -> str:
    try:
        trial = client.finish_trial(
            trial_id,
            FinishIn(attempt=attempt, status=status, value=value, error=error),  # type: ignore[arg-type]
        )
    except Conflict as err:
        log.warning("trial %s attempt %s finish refused: %s", trial_id, attempt, err.message)
        return "superseded"
    return trial.status
