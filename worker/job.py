"""The job function: ``run_trial(trial_id)`` runs one attempt of one trial.

A job carries only a trial id. Everything else comes from the server over HTTP: the
trial's spec and attempt number at start, a continue/stop decision after every epoch's
report. The attempt heartbeats while it runs and resumes from the trial's checkpoint
when an earlier attempt left one. A trial's own failure (bad parameters, NaN loss, a
crash in training) finishes it as ``failed`` with the reason and never raises, so the
study goes on. When the worker is asked to shut down (``SHUTDOWN``), the attempt stops at
the next epoch and hands the trial back to the queue. A study that names its own training
function (``train.entrypoint``) runs it through ``worker.trainable`` instead of the
built-in bridge, with the same reports, decisions and endings.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

from hpo.artifacts import LocalStore, trial_folder
from hpo.client import Client, Conflict
from hpo.schemas import FinishIn, ReportIn, TrialSpec
from hpo.settings import Settings, get_settings
from models import EpochMetrics, NonFiniteLossError
from worker.bridge import checkpoint_path, objective_of, run_training
from worker.lease import Fenced, Lease, retrying
from worker.logs import shipped_output
from worker.trainable import checkpoint_dir_for, run_entrypoint

__all__ = ["RUNNER_NAME_ENV", "SHUTDOWN", "process_client", "run_trial", "worker_name"]

log = logging.getLogger(__name__)

#: Set when this worker process must leave (SIGTERM): running attempts hand back.
SHUTDOWN = threading.Event()


class _Flag(Protocol):
    def is_set(self) -> bool: ...


#: Set while this process's daemon holds its devices free for a bigger trial that waits
#: (``worker.daemon``): a finish then asks for no next trial. A runner puts its daemon's
#: shared flag here.
DRAINING: _Flag = threading.Event()
_client: Client | None = None


#: Set by a daemon for its runner processes: the daemon's own name.
RUNNER_NAME_ENV = "HPO_WORKER_NAME"


def worker_name() -> str:
    """How this process names itself to the server: ``host:pid``, or, in a daemon's
    runner process, ``<daemon's name>/<pid>`` (the daemon registers; its runners run
    the trials, and the server counts those as the daemon's)."""
    daemon = os.environ.get(RUNNER_NAME_ENV)
    if daemon:
        return f"{daemon}/{os.getpid()}"
    return f"{socket.gethostname()}:{os.getpid()}"


def process_client() -> Client:
    """One client per worker process, from ``HPO_*`` settings (jobs carry only ids).

    A worker presents ``HPO_WORKER_TOKEN`` (rights to run trials only) when it has one.
    """
    global _client
    if _client is None:
        settings = get_settings()
        _client = Client(token=settings.worker_token or settings.token)
    return _client


def run_trial(
    trial_id: int,
    *,
    client: Client | None = None,
    device: str | None = None,
    chain: Callable[[TrialSpec], bool] | None = None,
) -> str:
    """Run one attempt of ``trial_id`` and return the status it ended with:
    completed / pruned / failed / stopped, ``released`` (handed back on shutdown),
    ``skipped`` (the server refused the start: not queued any more) or ``superseded``
    (a newer attempt owns the trial).

    With ``chain`` (asked at each finish with the spec of the trial that ends: may
    this worker take another trial of its study now?) a finish asks the server for
    the study's next trial, and while one comes back it runs too (already started for
    this worker: no queue round trip, no start request); the status returned is then
    the last trial's. Never after ``SHUTDOWN``.
    """
    client = client or process_client()
    settings = get_settings()
    patience = settings.server_patience
    try:
        spec: TrialSpec | None = retrying(
            lambda: client.start_trial(trial_id, worker=worker_name()),
            deadline=time.monotonic() + patience,
        )
    except Conflict as err:
        log.info("trial %s not started: %s", trial_id, err.message)
        return "skipped"
    status = "skipped"
    while spec is not None:
        status, spec = _attempt(client, spec, device, settings, chain)
    return status


def _attempt(
    client: Client,
    spec: TrialSpec,
    device: str | None,
    settings: Settings,
    chain: Callable[[TrialSpec], bool] | None,
) -> tuple[str, TrialSpec | None]:
    """Run one started attempt; its final status and the next trial leased with its
    finish (None when there is none)."""
    store = settings.artifact_store()
    artifacts = store.root  # where trials work; with an object store, its local cache
    want_next = None
    if chain is not None:

        def want_next() -> bool:
            return not SHUTDOWN.is_set() and not DRAINING.is_set() and chain(spec)

    resume_from = _resume_from(store, spec)
    with (
        shipped_output(
            lambda chunk: client.send_log(spec.trial_id, chunk),
            spec.attempt,
            cap=settings.log_max_bytes,
            interval=settings.log_interval,
            tee=settings.log_tee,
        ),
        Lease(client, spec, patience=settings.server_patience, want_next=want_next) as lease,
    ):
        try:
            if spec.train.entrypoint:
                ckpt_dir = checkpoint_dir_for(artifacts, spec)
                status = _run_entrypoint(lease, spec, device, ckpt_dir, resume_from, store)
            else:
                ckpt = checkpoint_path(artifacts, spec)
                every = settings.checkpoint_interval
                status = _run(lease, spec, device, ckpt, resume_from, every, store)
        except Fenced as err:
            log.warning("trial %s attempt %s fenced off: %s", spec.trial_id, spec.attempt, err)
            return "superseded", None
    return status, lease.next_trial


def _resume_from(store: LocalStore, spec: TrialSpec) -> Path | None:
    """Where the spec's checkpoint (a key of the artifact store) lies on this worker,
    fetched from an object store first; None when there is none, it is gone, or it
    would lie outside the store (never read that)."""
    if not spec.checkpoint:
        return None
    try:
        return store.fetch(spec.checkpoint) or store.path(spec.checkpoint)
    except ValueError as err:
        log.warning("trial %s: not resuming: %s", spec.trial_id, err)
    except Exception as err:  # an unreachable store: start over rather than fail
        log.warning("trial %s: cannot fetch checkpoint %s: %s", spec.trial_id, spec.checkpoint, err)
    return None


def _stored(store: LocalStore, spec: TrialSpec, report: ReportIn) -> ReportIn:
    """``report`` once the checkpoint it names is in the store (uploaded first with an
    object store, so the server never holds a key whose upload did not finish); without
    that checkpoint when the upload failed (the step is reported, not resumable)."""
    if report.checkpoint is None:
        return report
    try:
        store.push(f"{trial_folder(spec.study, spec.number)}/{report.checkpoint}")
    except Exception as err:
        log.warning(
            "trial %s: checkpoint of step %s not stored: %s", spec.trial_id, report.step, err
        )
        return report.model_copy(update={"checkpoint": None})
    return report


def _run(
    lease: Lease,
    spec: TrialSpec,
    device: str | None,
    ckpt: Path,
    resume_from: Path | None,
    every: float,
    store: LocalStore,
) -> str:
    """The built-in bridge: checkpoints at most every ``every`` seconds, at the last
    epoch, and at the epoch where the attempt stops to hand the trial back."""

    def on_epoch(metrics: EpochMetrics, saved: str | None) -> bool:
        if lease.fenced.is_set():
            raise Fenced(f"trial {spec.trial_id} attempt {spec.attempt}")
        report = ReportIn(
            attempt=spec.attempt,
            step=metrics.epoch,
            value=objective_of(metrics, spec.objective.metric),
            metrics=dict[str, float | int | str | bool | None](metrics.as_dict()),
            checkpoint=saved,
        )
        # A hand-back stops only at an epoch whose checkpoint was saved (and reported),
        # so the next attempt resumes right after it: a shutdown that lands between
        # this epoch's save decision and its report runs one more epoch, which saves.
        # Not at the last epoch: the trial is done, and finishing beats a retry.
        stop = lease.report(_stored(store, spec, report))
        handing_back = _leaving(lease) and saved is not None and metrics.epoch < spec.epochs
        return stop or handing_back

    def fail(error: str) -> str:
        return lease.finish(FinishIn(attempt=spec.attempt, status="failed", error=error))

    try:
        result = run_training(
            spec,
            on_epoch,
            device=device,
            checkpoint_to=ckpt,
            resume_from=resume_from,
            checkpoint_every=every,
            checkpoint_now=lambda: _leaving(lease),
        )
        # The last epoch's (reported, or replayed from a checkpoint that holds it)
        final = result.final
        value = None if final is None else objective_of(final, spec.objective.metric)
    except Fenced:
        raise
    except NonFiniteLossError as err:
        return fail(str(err))
    except (ValueError, KeyError) as err:
        return fail(f"invalid trial: {err}")
    except Exception as err:  # a crash in training ends this trial, not the worker
        log.exception("trial %s crashed", spec.trial_id)
        tail = "".join(traceback.format_exception_only(type(err), err)).strip()
        return fail(f"training crashed: {tail}")
    return _conclude(lease, spec, result.stopped_early, value)


def _run_entrypoint(
    lease: Lease,
    spec: TrialSpec,
    device: str | None,
    ckpt_dir: Path,
    resume_from: Path | None,
    store: LocalStore,
) -> str:
    """The user's training function (``train.entrypoint``) in place of the bridge."""

    def send(report: ReportIn) -> bool:
        if lease.fenced.is_set():
            raise Fenced(f"trial {spec.trial_id} attempt {spec.attempt}")
        # At the trial's last step it is done: let it return and finish, not hand back.
        stop = lease.report(_stored(store, spec, report))
        return stop or (_leaving(lease) and report.step < spec.epochs)

    outcome = run_entrypoint(
        spec,
        send,
        device=device,
        checkpoint_dir=ckpt_dir,
        resume_from=resume_from,
        acknowledged=lambda: lease.checkpoint_acked,
    )
    if outcome.error is not None:
        return lease.finish(FinishIn(attempt=spec.attempt, status="failed", error=outcome.error))
    return _conclude(lease, spec, outcome.stopped, outcome.value)


def _leaving(lease: Lease) -> bool:
    """Whether this attempt hands its trial back at its next checkpoint: the worker is
    shutting down, or the server asked (a study of higher priority needs the slot)."""
    return SHUTDOWN.is_set() or lease.hand_back_requested.is_set()


def _conclude(lease: Lease, spec: TrialSpec, stopped: bool, value: float | None) -> str:
    """End an attempt whose training returned: hand back on shutdown, else finish."""
    if stopped and _leaving(lease) and not lease.stop_requested.is_set():
        if SHUTDOWN.is_set():
            return lease.release("worker shutting down")
        return lease.release("asked by the server to hand back")
    if value is not None and not math.isfinite(value):
        return lease.finish(
            FinishIn(attempt=spec.attempt, status="failed", error="no finite objective value")
        )
    # A value of None completes with the trial's last reported objective (the server's
    # part: an attempt that resumed at the last step reports nothing of its own).
    status: Literal["pruned", "completed"] = "pruned" if stopped else "completed"
    return lease.finish(FinishIn(attempt=spec.attempt, status=status, value=value))
