"""Pools: which workers serve a pool now, and whether a study's trials can run there.

A worker belongs to the pool it registered with; it *serves* the pool while its
registration is fresh (within the heartbeat timeout) and it has not said it stopped.
At creation a study is checked against its pool (:func:`check_resources`): a trial no
worker of the pool could ever hold is refused, naming ``resources.gpus``; a pool the
service cannot reach (an embedded server's own workers are all ``default``) is refused,
naming ``resources.pool``. A pool with no worker *yet* is allowed (the fleet may still
be starting), and the study says why it waits (:func:`waiting_reason`).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpo.resources import Resources, pool_error
from hpo.vocabulary import DEFAULT_POOL
from server.errors import Invalid
from server.tables import Study, Worker, utcnow

__all__ = ["check_resources", "gpu_count", "serving_workers", "slot_count", "waiting_reason"]


def gpu_count(devices: list[str] | None) -> int:
    """GPUs among a worker's registered devices (a CPU worker registers ``cpu``, or
    ``cpu0``, ``cpu1``, ... for a daemon's CPU slots)."""
    return sum(1 for d in devices or [] if not d.startswith("cpu"))


def slot_count(devices: list[str] | None) -> int:
    """Slots a worker brings to its pool: one per GPU, else one per CPU slot (at
    least one: a worker that registered no device still runs one trial)."""
    gpus = gpu_count(devices)
    return gpus if gpus else max(1, len(devices or []))


def serving_workers(session: Session, pool: str, heartbeat_timeout: float) -> list[Worker]:
    """The workers of ``pool`` whose registration is fresh and who have not stopped."""
    cutoff = utcnow() - timedelta(seconds=heartbeat_timeout)
    return list(
        session.scalars(
            select(Worker).where(
                Worker.pool == pool, Worker.status != "stopped", Worker.heartbeat_at >= cutoff
            )
        )
    )


def check_resources(
    session: Session, resources: Resources, *, local_only: bool, heartbeat_timeout: float
) -> None:
    """Refuse (``Invalid`` naming the field) a study whose trials could never run:
    a pool other than ``default`` where only this server's own workers run trials
    (``local_only``), or more GPUs per trial than any serving worker of the pool has."""
    if local_only and resources.pool != DEFAULT_POOL:
        raise Invalid(
            f"resources.pool: this server runs trials on its own local workers, all in "
            f"pool {DEFAULT_POOL!r}; pool {resources.pool!r} needs a fleet (HPO_REDIS_URL "
            f"and `hpo worker --pool {resources.pool}`)",
            field="resources.pool",
        )
    counts = [
        gpu_count(w.devices) for w in serving_workers(session, resources.pool, heartbeat_timeout)
    ]
    problem = pool_error(resources, counts)
    if problem is not None:
        raise Invalid(f"resources.gpus: {problem}", field="resources.gpus")


def waiting_reason(session: Session, study: Study, heartbeat_timeout: float) -> str | None:
    """Why a running study's trials wait with no one to run them: its pool has no
    serving worker. None when one serves it, or the study is not waiting on workers."""
    if study.status != "running" or study.runner != "workers":
        return None
    if serving_workers(session, study.pool, heartbeat_timeout):
        return None
    return (
        f"no worker serves pool {study.pool!r}: its trials wait until one joins "
        f"(hpo worker --pool {study.pool})"
    )
