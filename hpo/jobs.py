"""The one job the queue may carry, named in one place for the server and the workers.

Jobs carry ids, not code (DESIGN.md): an RQ job is ``worker.job.run_trial(trial_id)``,
serialized as JSON. The server enqueues it by this name (it never imports ``worker``);
workers refuse to run anything else.
"""

from __future__ import annotations

from hpo.vocabulary import DEFAULT_POOL

__all__ = ["RUN_TRIAL", "job_id", "pool_queue", "trial_of_job"]

#: Import path of the only job function a worker runs.
RUN_TRIAL = "worker.job.run_trial"
_PREFIX = "trial-"


def job_id(trial_id: int, nonce: str) -> str:
    """A job id that names its trial: ``trial-<id>-<nonce>`` (unique per enqueue)."""
    return f"{_PREFIX}{trial_id}-{nonce}"


def trial_of_job(job: str) -> int | None:
    """The trial id a job id names, or None for a job id that is not ours."""
    if not job.startswith(_PREFIX):
        return None
    head = job[len(_PREFIX) :].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def pool_queue(base: str, pool: str) -> str:
    """The queue that carries a pool's jobs: ``base`` itself for the default pool (so a
    fleet of before pools keeps its queue), ``base:pool`` for the others."""
    return base if pool == DEFAULT_POOL else f"{base}:{pool}"
