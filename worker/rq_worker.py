"""RQ glue for the fleet: a job class that runs only our job, and a non-forking worker.

``TrialJob`` refuses to run anything but ``hpo.jobs.RUN_TRIAL`` with one integer
argument, and never resolves callbacks named in job data: a job forged straight into
Redis (a pickle payload, or JSON naming ``os.system``) runs no code. ``TrialWorker`` is
RQ's ``SimpleWorker`` (no fork per job, so torch and data sets load once per process)
whose SIGTERM handling also asks the running trial to hand itself back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

from hpo.jobs import RUN_TRIAL
from hpo.schemas import TrialSpec
from worker.job import SHUTDOWN

__all__ = ["ForbiddenJob", "TrialJob", "TrialWorker"]

log = logging.getLogger(__name__)
#: Seconds a chained trial must leave between its own timeout and the job's.
CHAIN_SPARE = 20.0


class ForbiddenJob(RuntimeError):
    """A job that is not ``run_trial(<int>)``: refused without running anything."""


class TrialJob(Job):
    """An RQ job that can only be ``run_trial(trial_id)``."""

    def _execute(self) -> Any:
        try:
            name, args, kwargs = self.func_name, self.args, self.kwargs
            instance = self.instance
        except Exception as err:  # undecodable payload (e.g. pickle under JSON)
            raise ForbiddenJob(
                f"job {self.id}: unreadable payload ({type(err).__name__})"
            ) from None
        valid_args = (
            isinstance(args, list | tuple)
            and len(args) == 1
            and isinstance(args[0], int)
            and not isinstance(args[0], bool)
        )
        if name != RUN_TRIAL or instance is not None or kwargs or not valid_args:
            raise ForbiddenJob(f"job {self.id}: refusing {name!r}; only {RUN_TRIAL}(trial_id) runs")
        from worker.job import run_trial

        return run_trial(int(args[0]), chain=self._chain_window())

    def _chain_window(self) -> Callable[[TrialSpec], bool]:
        """May this job run one more trial (leased with a finish) after ``spec``'s?

        Only while that trial, given its whole trial timeout, would still end well
        inside this job's RQ timeout: RQ kills a job at its timeout (the backstop for a
        hung trial, set a little over the trial timeout), and a chain must never make
        that kill land on a healthy trial or before the server's reaper acts. In
        practice fast trials chain for a few tens of seconds per job; slow ones never.
        """
        started = time.monotonic()
        timeout = self.timeout or Queue.DEFAULT_TIMEOUT
        if timeout < 0:  # no RQ timeout: nothing to outrun
            return lambda spec: True
        return lambda spec: time.monotonic() - started + spec.timeout + CHAIN_SPARE < timeout

    # Callbacks are named in job data: a forged job could name any function. Ours
    # never use them, so none is ever resolved.
    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None


class TrialWorker(SimpleWorker):
    """Non-forking RQ worker for trial jobs (JSON serializer, ``TrialJob``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", JSONSerializer)
        kwargs.setdefault("job_class", TrialJob)
        super().__init__(*args, **kwargs)

    def request_stop(self, signum: Any, frame: Any) -> None:
        # Warm shutdown: RQ waits for the running job; SHUTDOWN makes that job stop at
        # its next epoch and hand the trial back instead of finishing all epochs.
        SHUTDOWN.set()
        super().request_stop(signum, frame)
