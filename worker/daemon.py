"""The worker daemon (``hpo worker``): one process per GPU slot, each an RQ worker.

The parent plans slots (one per GPU, or CPU slots), spawns one process per slot with
``CUDA_VISIBLE_DEVICES`` pinned before torch loads, restarts a slot whose process dies,
and on SIGTERM/SIGINT asks every slot to shut down warmly (a running trial stops at its
next epoch and is handed back to the queue, resuming elsewhere from its checkpoint).

Each slot process registers with the server over HTTP (``POST /api/v1/workers``) and
repeats that as its heartbeat; it talks to Redis only to take jobs.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

from hpo.jobs import pool_queue
from hpo.vocabulary import DEFAULT_POOL
from worker.gpus import Slot

__all__ = ["DaemonConfig", "run_daemon"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DaemonConfig:
    """What the daemon needs; everything else comes from ``HPO_*`` settings."""

    redis_url: str
    queue_name: str
    slots: tuple[Slot, ...]
    pool: str = DEFAULT_POOL
    burst: bool = False  # exit when the queue is empty (tests, batch jobs)


def run_daemon(config: DaemonConfig) -> int:
    """Run the slots until SIGTERM/SIGINT (or, with ``burst``, until they are idle)."""
    ctx = mp.get_context("spawn")
    stopping = threading.Event()
    procs: dict[int, BaseProcess] = {}

    def spawn(index: int) -> None:
        slot = config.slots[index]
        proc = ctx.Process(
            target=_slot_main,
            args=(
                slot,
                config.redis_url,
                pool_queue(config.queue_name, config.pool),
                config.pool,
                config.burst,
                os.getpid(),
            ),
            name=f"hpo-worker-{slot.name}",
        )
        proc.start()
        procs[index] = proc
        log.info("slot %s: process %s", slot.name, proc.pid)

    def shutdown(signum: int, _frame: object) -> None:
        if stopping.is_set():  # second signal: stop now
            for proc in procs.values():
                if proc.is_alive() and proc.pid:
                    os.kill(proc.pid, signal.SIGKILL)
            return
        stopping.set()
        for proc in procs.values():
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    for index in range(len(config.slots)):
        spawn(index)
    while True:
        for index, proc in list(procs.items()):
            if proc.is_alive():
                continue
            if stopping.is_set() or (config.burst and proc.exitcode == 0):
                continue
            log.warning(
                "slot %s died (exit %s); restarting", config.slots[index].name, proc.exitcode
            )
            spawn(index)
        if all(not p.is_alive() for p in procs.values()) and (stopping.is_set() or config.burst):
            return 0
        time.sleep(0.2)


def _slot_main(
    slot: Slot, redis_url: str, queue_name: str, pool: str, burst: bool, parent: int
) -> None:
    """One slot: pin the device, register with the server in its pool, take that pool's
    jobs until told to stop."""
    os.environ.update(slot.env)  # before torch is imported anywhere in this process
    if "OMP_NUM_THREADS" in slot.env:  # also if torch was imported before the update
        import torch

        torch.set_num_threads(int(slot.env["OMP_NUM_THREADS"]))
    logging.basicConfig(level=logging.WARNING, format=f"{slot.name} %(levelname)s %(message)s")
    # Ctrl-C in a terminal reaches every process: the parent turns it into SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from redis import Redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    from hpo.settings import get_settings
    from worker.job import process_client, worker_name
    from worker.presence import Presence
    from worker.rq_worker import TrialWorker

    settings = get_settings()
    client = process_client()
    rq_worker_box: list[TrialWorker] = []

    def orphaned() -> None:
        if os.getppid() != parent and rq_worker_box:  # orphaned: leave warmly
            os.kill(os.getpid(), signal.SIGTERM)

    presence = Presence(
        client, slot.devices, settings.heartbeat_interval, orphaned, pool=pool
    ).start()
    connection = Redis.from_url(redis_url)
    queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
    rq_worker = TrialWorker([queue], connection=connection, name=f"{worker_name()}-{slot.name}")
    rq_worker_box.append(rq_worker)
    try:
        rq_worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
    finally:
        presence.stop()
