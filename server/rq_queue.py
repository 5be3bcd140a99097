"""The fleet transport: trial ids on a Redis queue for RQ workers.

Jobs are ``hpo.jobs.RUN_TRIAL`` with one argument, the trial id, serialized with RQ's
JSON serializer (never pickle). A job's timeout follows its study's trial timeout (not
RQ's 180 s default). Each pool and trial size has its own queue (``hpo.jobs.pool_queue``:
the base name for ``default``, ``<base>:<pool>`` for the others, ``:gpus=<size>`` after
either for trials of more or less than one slot), so a trial is only ever taken by a
worker of its study's pool, and only when that worker has room for it. The queue is
transport only: :meth:`live_trial_ids` tells the reconciler which trials some job still
holds, so trials lost with a flushed Redis are enqueued again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import select

from hpo.jobs import RUN_TRIAL, job_id, pool_queue, trial_of_job
from hpo.vocabulary import DEFAULT_POOL
from server.db import Database
from server.tables import Study, Trial

__all__ = ["RQTrialQueue"]

log = logging.getLogger(__name__)


class RQTrialQueue:
    """Enqueues trial jobs on Redis; satisfies ``server.queue.TrialQueue``."""

    owns_workers = False

    def __init__(self, redis_url: str, db: Database, *, name: str = "hpo-trials") -> None:
        self.redis = Redis.from_url(redis_url)
        self.name = name
        self._queues: dict[str, Queue] = {}
        self.queue = self.pool(DEFAULT_POOL)
        self.db = db

    def pool(self, pool: str, gpus: float | None = None) -> Queue:
        """The queue of ``pool``'s jobs of trials asking ``gpus``."""
        name = pool_queue(self.name, pool, gpus)
        queue = self._queues.get(name)
        if queue is None:
            queue = Queue(name, connection=self.redis, serializer=JSONSerializer)
            self._queues[name] = queue
        return queue

    def _routes(self, trial_ids: Sequence[int]) -> dict[int, tuple[float, str, float | None]]:
        with self.db.session() as session:
            rows = session.execute(
                select(Trial.id, Study.trial_timeout, Study.pool, Study.gpus)
                .join(Study, Study.id == Trial.study_id)
                .where(Trial.id.in_(list(trial_ids)))
            ).all()
        return {tid: (timeout, pool, gpus) for tid, timeout, pool, gpus in rows}

    def enqueue(self, trial_ids: Sequence[int]) -> None:
        """One pipeline round trip for the whole batch (per pool it spans)."""
        if not trial_ids:
            return
        routes = self._routes(trial_ids)
        by_queue: dict[tuple[str, float | None], list[Any]] = {}
        for tid in trial_ids:
            timeout, pool, gpus = routes.get(tid, (86_400.0, DEFAULT_POOL, None))
            by_queue.setdefault((pool, gpus), []).append(
                Queue.prepare_data(
                    RUN_TRIAL,
                    args=(int(tid),),
                    # a little over the trial timeout: the server's reaper acts first
                    timeout=int(timeout) + 60,
                    job_id=job_id(int(tid), uuid.uuid4().hex[:12]),
                    result_ttl=0,  # the database holds the outcome: keep no result in Redis
                    failure_ttl=86_400,
                    description=f"trial {tid}",
                )
            )
        for (pool, gpus), jobs in by_queue.items():
            self.pool(pool, gpus).enqueue_many(jobs)

    def live_trial_ids(self) -> set[int] | None:
        """Trials some job holds: waiting in any of a pool's queues (every size) or
        started by a worker."""
        with self.db.session() as session:
            shapes = set(session.execute(select(Study.pool, Study.gpus).distinct()).tuples())
        names = {pool_queue(self.name, pool, gpus) for pool, gpus in shapes} | set(self._queues)
        ids: list[str] = []
        for name in sorted(names):
            queue = self._queues.get(name) or Queue(
                name, connection=self.redis, serializer=JSONSerializer
            )
            ids += queue.get_job_ids()
            ids += StartedJobRegistry(queue=queue).get_job_ids()
        return {t for t in map(trial_of_job, ids) if t is not None}
