"""The fleet transport: trial ids on a Redis queue for RQ workers.

Jobs are ``hpo.jobs.RUN_TRIAL`` with one argument, the trial id, serialized with RQ's
JSON serializer (never pickle). A job's timeout follows its study's trial timeout (not
RQ's 180 s default). The queue is transport only: :meth:`live_trial_ids` tells the
reconciler which trials some job still holds, so trials lost with a flushed Redis are
enqueued again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import select

from hpo.jobs import RUN_TRIAL, job_id, trial_of_job
from server.db import Database
from server.tables import Study, Trial

__all__ = ["RQTrialQueue"]

log = logging.getLogger(__name__)


class RQTrialQueue:
    """Enqueues trial jobs on Redis; satisfies ``server.queue.TrialQueue``."""

    owns_workers = False

    def __init__(self, redis_url: str, db: Database, *, name: str = "hpo-trials") -> None:
        self.redis = Redis.from_url(redis_url)
        self.queue = Queue(name, connection=self.redis, serializer=JSONSerializer)
        self.db = db

    def _timeouts(self, trial_ids: Sequence[int]) -> dict[int, float]:
        with self.db.session() as session:
            rows = session.execute(
                select(Trial.id, Study.trial_timeout)
                .join(Study, Study.id == Trial.study_id)
                .where(Trial.id.in_(list(trial_ids)))
            ).all()
        return {tid: timeout for tid, timeout in rows}

    def enqueue(self, trial_ids: Sequence[int]) -> None:
        """One pipeline round trip for the whole batch."""
        if not trial_ids:
            return
        timeouts = self._timeouts(trial_ids)
        jobs = [
            Queue.prepare_data(
                RUN_TRIAL,
                args=(int(tid),),
                # a little over the trial timeout: the server's reaper acts first
                timeout=int(timeouts.get(tid, 86_400)) + 60,
                job_id=job_id(int(tid), uuid.uuid4().hex[:12]),
                result_ttl=0,  # the database holds the outcome: keep no result in Redis
                failure_ttl=86_400,
                description=f"trial {tid}",
            )
            for tid in trial_ids
        ]
        self.queue.enqueue_many(jobs)

    def live_trial_ids(self) -> set[int] | None:
        """Trials some job holds: waiting in the queue or started by a worker."""
        ids = self.queue.get_job_ids()
        ids += StartedJobRegistry(queue=self.queue).get_job_ids()
        return {t for t in map(trial_of_job, ids) if t is not None}
