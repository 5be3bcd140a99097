"""Finishing a trial's attempt, as the service does it: the write, then the hand-over.

``POST /trials/{id}/finish`` is a thin route over :func:`finish`; tests call it directly.
One finish:

1. ends the attempt (:func:`server.trials.finish_trial`: the reports the worker held
   back, then the outcome, fenced on the attempt; a repeat of the same finish writes
   nothing);
2. holds the slot it freed (``Scheduler.holds``) from before its commit, so neither a
   pass nor another finish's refill takes it in between;
3. refills that study at once (:func:`server.refill.refill`), the new trial going
   straight to the finishing worker with ``lease_next``;
4. for a repeated finish (its answer was lost), hands the worker the trial the first
   answer carried (:func:`server.refill.handed_with`), never a second one.

Locking by dialect: on PostgreSQL the finish's own transaction runs outside the
scheduler's lock (only the refill, which numbers new trials, needs it; at hundreds of
finishes a second that lock bounds the service's throughput). SQLite writes one
transaction at a time anyway and a writer that finds the file locked sleeps in its busy
handler, so there finishes queue on the lock instead (measured ~10 % faster).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from hpo.schemas import FinishIn, FinishOut, TrialSpec
from server import trials
from server.convert import trial_public
from server.refill import handed_with, refill
from server.scheduler import Scheduler
from server.tables import Study, Trial

__all__ = ["Timing", "finish"]


@dataclass(frozen=True)
class Timing:
    """The intervals a trial spec tells its worker (from the server's settings)."""

    heartbeat_interval: float
    report_interval: float


def finish(scheduler: Scheduler, trial_id: int, body: FinishIn, timing: Timing) -> FinishOut:
    """End the attempt with a value or an error (idempotent per attempt) and refill
    its study; ``next_trial`` carries the trial leased to the worker, if any.

    Raises what :func:`server.trials.finish_trial` raises (``NotFound``, ``Conflict``
    for a superseded attempt, ``Invalid`` naming a report's field); nothing is written
    then. Without a scheduling thread (``scheduler.active`` false: tests that
    schedule by hand) nothing is refilled behind the caller's back."""
    if not scheduler.db.is_sqlite:
        return _Finish(scheduler, trial_id, body, timing).run()
    with scheduler.exclusive():
        return _Finish(scheduler, trial_id, body, timing).run()


class _Finish:
    """One finish request's steps (the module doc), sharing what they need."""

    def __init__(self, scheduler: Scheduler, trial_id: int, body: FinishIn, timing: Timing) -> None:
        self.scheduler = scheduler
        self.trial_id = trial_id
        self.body = body
        self.timing = timing
        self.held: list[int] = []  # the trial whose freed slot this finish holds, if any

    def run(self) -> FinishOut:
        scheduler = self.scheduler
        try:
            out, study, repeated = self._write()
            if not scheduler.active:
                return out
            lease_to = (out.worker or "") if self.body.lease_next else None
            refill_it = functools.partial(
                refill,
                scheduler,
                study,
                finishing=self.trial_id,
                lease_to=lease_to,
                spec_of=self._spec_of,
            )
            if repeated and lease_to is not None:
                # A repeat, under one hold of the lock: the first request's refill has
                # either committed (the trial it handed over is found) or not run yet
                # (this one refills the slot held for it, for the same worker, and the
                # first finds it taken): the worker never misses a trial leased to it.
                with scheduler.exclusive():
                    out.next_trial = self._handed_again() or refill_it()
                return out
            out.next_trial = refill_it()
            return out
        finally:
            for trial_id in self.held:
                scheduler.holds.release(trial_id)

    def _write(self) -> tuple[FinishOut, Study, bool]:
        scheduler = self.scheduler
        with scheduler.db.session() as session:
            trial, repeated = trials.finish_trial(session, self.trial_id, self.body)
            if not repeated and scheduler.active:
                # before the commit: no pass fills the freed slot ahead of our refill
                scheduler.holds.hold(trial.id, trial.study_id, trial.number)
                self.held.append(trial.id)
            return trial_public(trial, trial.study.name, FinishOut), trial.study, repeated

    def _handed_again(self) -> TrialSpec | None:
        with self.scheduler.db.session() as session:
            trial = session.get(Trial, self.trial_id)
            handed = None if trial is None else handed_with(session, trial)
            return None if trial is None or handed is None else self._spec_of(trial.study, handed)

    def _spec_of(self, study: Study, trial: Trial) -> TrialSpec:
        return trials.trial_spec(
            study,
            trial,
            trial.attempt,
            heartbeat_interval=self.timing.heartbeat_interval,
            report_interval=self.timing.report_interval,
        )
