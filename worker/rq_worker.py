"""RQ glue for the fleet: a job class that runs only our job, and a non-forking worker.

``TrialJob`` refuses to run anything but ``hpo.jobs.RUN_TRIAL`` with one integer
argument, and never resolves callbacks named in job data: a job forged straight into
Redis (a pickle payload, or JSON naming ``os.system``) runs no code. ``TrialWorker`` is
RQ's ``SimpleWorker`` (no fork per job, so torch and data sets load once per process)
whose SIGTERM handling also asks the running trial to hand itself back.
"""

from __future__ import annotations

import logging
from typing import Any

from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

from hpo.jobs import RUN_TRIAL
from worker.job import SHUTDOWN

__all__ = ["ForbiddenJob", "TrialJob", "TrialWorker"]

log = logging.getLogger(__name__)


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

        return run_trial(int(args[0]))

    # Callbacks are named in job data: a forged job could name any function. Ours
    # never use them, so none is ever resolved.
    @property
    def success_callback(self) -> None:  # type: ignore[override]
        return None

    @property
    def failure_callback(self) -> None:  # type: ignore[override]
        return None

    @property
    def stopped_callback(self) -> None:  # type: ignore[override]
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
