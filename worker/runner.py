"""A runner: the process a daemon runs trials in, pinned to one placement's devices.

The daemon (``worker.daemon``) starts a runner for a placement (one GPU, several, or a
CPU slot) with ``CUDA_VISIBLE_DEVICES`` set to exactly those devices before torch loads,
so a trial sees them as ``cuda:0..N-1`` (``reporter.devices``). The runner imports what
trials need once, says ``ready``, then runs the jobs the daemon hands it, one at a time:
the daemon pops a job from the queue only for a ready idle runner, so a job never waits
inside a busy process. Each job is run by RQ's machinery (``TrialWorker.execute_job``:
the started registry, the job's timeout), and the runner answers ``done`` with its id.

On SIGTERM a running trial stops at its next epoch and hands itself back (``SHUTDOWN``);
an idle runner exits. A runner whose daemon died does the same (it watches its parent).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["DONE", "READY", "runner_main"]

READY = "ready"
DONE = "done"
#: Seconds between the checks that the daemon is still there.
PARENT_CHECK = 1.0


def runner_main(
    env: dict[str, str],
    conn: Connection,
    redis_url: str,
    parent: int,
    label: str,
    draining: Any = None,
) -> None:
    """The runner process's body: ``env`` pins its devices (applied before torch is
    imported), ``conn`` is its pipe to the daemon (``parent``'s pid), ``draining`` the
    daemon's flag that it holds its devices free for a bigger trial (``worker.job``)."""
    os.environ.update(env)
    if "OMP_NUM_THREADS" in env:  # also if torch was imported before the update
        import torch

        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    logging.basicConfig(level=logging.WARNING, format=f"{label} %(levelname)s %(message)s")
    # Ctrl-C in a terminal reaches every process: the daemon turns it into SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from redis import Redis
    from rq import Queue
    from rq.exceptions import NoSuchJobError
    from rq.serializers import JSONSerializer

    import worker.job
    from worker.job import SHUTDOWN, worker_name
    from worker.rq_worker import TrialJob, TrialWorker

    if draining is not None:
        worker.job.DRAINING = draining

    leaving = threading.Event()

    def leave(_signum: int, _frame: object) -> None:
        SHUTDOWN.set()  # a running trial hands back at its next epoch
        leaving.set()

    signal.signal(signal.SIGTERM, leave)

    def watch_parent() -> None:
        while not leaving.wait(PARENT_CHECK):
            if os.getppid() != parent:  # orphaned: leave warmly
                leave(signal.SIGTERM, None)

    threading.Thread(target=watch_parent, daemon=True, name="hpo-runner-parent").start()
    connection = Redis.from_url(redis_url)
    queues: dict[str, Queue] = {}
    rq_worker: TrialWorker | None = None
    conn.send((READY, os.getpid()))
    while not leaving.is_set():
        try:
            if not conn.poll(0.5):
                continue
            message = conn.recv()
        except (EOFError, OSError):  # the daemon is gone
            break
        if message is None:
            break
        job_id, queue_name = message
        queue = queues.get(queue_name)
        if queue is None:
            queue = queues[queue_name] = Queue(
                queue_name, connection=connection, serializer=JSONSerializer
            )
        if rq_worker is None:
            rq_worker = TrialWorker([queue], connection=connection, name=worker_name())
        try:
            job = TrialJob.fetch(job_id, connection=connection, serializer=JSONSerializer)
        except NoSuchJobError:  # deleted meanwhile (a study deleted): nothing to run
            job = None
        if job is not None:
            rq_worker.execute_job(job, queue)
        try:
            conn.send((DONE, job_id))
        except OSError:
            break
