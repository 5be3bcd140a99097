"""The one job the queue may carry, and the queues that carry it, named in one place
for the server and the workers.

Jobs carry ids, not code (DESIGN.md): an RQ job is ``worker.job.run_trial(trial_id)``,
serialized as JSON. The server enqueues it by this name (it never imports ``worker``);
workers refuse to run anything else.

A queue carries the jobs of one pool and one trial size (``hpo.resources.demand``), so a
worker takes only a job that fits what it has free right now: ``base`` (the default
pool) or ``base:<pool>``, with ``:gpus=2`` or ``:gpus=1/4`` appended for trials of any
size but one slot.
"""

from __future__ import annotations

from fractions import Fraction

from hpo.resources import demand
from hpo.vocabulary import DEFAULT_POOL

__all__ = [
    "RUN_TRIAL",
    "job_id",
    "pool_queue",
    "queue_size",
    "size_label",
    "trial_of_job",
]

#: Import path of the only job function a worker runs.
RUN_TRIAL = "worker.job.run_trial"
_PREFIX = "trial-"
_SIZE = ":gpus="


def job_id(trial_id: int, nonce: str) -> str:
    """A job id that names its trial: ``trial-<id>-<nonce>`` (unique per enqueue)."""
    return f"{_PREFIX}{trial_id}-{nonce}"


def trial_of_job(job: str) -> int | None:
    """The trial id a job id names, or None for a job id that is not ours."""
    if not job.startswith(_PREFIX):
        return None
    head = job[len(_PREFIX) :].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def size_label(size: Fraction) -> str:
    """A trial size as a queue names it: ``2``, ``1/4``."""
    return str(size)


def pool_queue(base: str, pool: str, gpus: float | None = None) -> str:
    """The queue that carries a pool's jobs of trials asking ``gpus``: ``base`` itself
    for the default pool and one slot (so a fleet of before pools keeps its queue),
    ``base:pool`` for other pools, then ``:gpus=<size>`` for any other size."""
    name = base if pool == DEFAULT_POOL else f"{base}:{pool}"
    size = demand(gpus)
    return name if size == 1 else f"{name}{_SIZE}{size_label(size)}"


def queue_size(name: str, base: str, pool: str) -> Fraction | None:
    """The trial size ``name`` carries when it is one of ``pool``'s queues under
    ``base``; None for any other queue (another pool's, another base's, malformed)."""
    head = base if pool == DEFAULT_POOL else f"{base}:{pool}"
    if name == head:
        return Fraction(1)
    if not name.startswith(head + _SIZE):
        return None
    try:
        size = Fraction(name[len(head) + len(_SIZE) :])
    except (ValueError, ZeroDivisionError):
        return None
    return size if size > 0 else None
