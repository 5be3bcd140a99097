"""Registered workers: upsert on each registration heartbeat, list with current trials."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hpo.schemas import WorkerIn, WorkerPublic
from server.tables import Trial, Worker, utcnow

__all__ = ["list_workers", "register_worker"]


def register_worker(session: Session, body: WorkerIn) -> Worker:
    """Create or refresh a worker's row (the registration doubles as its heartbeat)."""
    now = utcnow()
    worker = session.get(Worker, body.name)
    if worker is None:
        worker = Worker(name=body.name, started_at=now)
        session.add(worker)
    worker.host, worker.pid, worker.devices = body.host, body.pid, list(body.devices)
    worker.pool = body.pool
    worker.status, worker.heartbeat_at = body.status, now
    return worker


def list_workers(
    session: Session, *, heartbeat_timeout: float, include_stopped: bool = False
) -> list[WorkerPublic]:
    """Workers with the trials they run now; ``stale`` when silent past the timeout."""
    now = utcnow()
    query = select(Worker).order_by(Worker.pool, Worker.name)
    if not include_stopped:
        query = query.where(Worker.status != "stopped")
    workers = session.scalars(query).all()
    running: dict[str, list[int]] = {}
    for tid, name in session.execute(
        select(Trial.id, Trial.worker).where(Trial.status == "running", Trial.worker.is_not(None))
    ):
        # A daemon's runner runs trials as ``<daemon>/<pid>``: they are the daemon's.
        running.setdefault(str(name).split("/", 1)[0], []).append(tid)
    cutoff = now - timedelta(seconds=heartbeat_timeout)
    out = []
    for w in workers:
        beat = (
            w.heartbeat_at if w.heartbeat_at.tzinfo else w.heartbeat_at.replace(tzinfo=now.tzinfo)
        )
        out.append(
            WorkerPublic(
                name=w.name,
                host=w.host,
                pid=w.pid,
                devices=list(w.devices or []),
                pool=w.pool,
                status="busy" if running.get(w.name) else w.status,
                current_trials=sorted(running.get(w.name, [])),
                started_at=w.started_at,
                heartbeat_at=w.heartbeat_at,
                stale=beat < cutoff,
            )
        )
    return out
