"""The local executor: worker processes on this machine that run ``run_trial`` jobs.

It satisfies the server's ``TrialQueue`` protocol structurally (``enqueue`` +
``owns_workers``) without importing the server. Jobs are trial ids on a multiprocessing
queue; each process is long-lived, so torch is imported and data sets are loaded once per
process, not once per trial. Processes are spawned (not forked) because the parent runs
threads (uvicorn, the scheduler) that a fork would copy in an undefined state.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Any

__all__ = ["LocalExecutor", "default_worker_count"]

log = logging.getLogger(__name__)
_STOP = None  # sentinel that ends a worker process


def default_worker_count() -> int:
    """One worker per CPU core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class LocalExecutor:
    """``n_workers`` processes that each run one trial at a time."""

    owns_workers = True

    def __init__(self, server_url: str, n_workers: int | None = None, token: str | None = None):
        self.server_url = server_url
        self.token = token
        self.n_workers = n_workers or default_worker_count()
        self._ctx = mp.get_context("spawn")
        self._jobs: Any = self._ctx.Queue()
        self._procs: list[BaseProcess] = []
        self._closing = threading.Event()
        # Seen by the worker processes: once set, none takes another trial with a
        # finish (a chain), so closing waits for one trial per worker, not a study.
        self._no_chain: Any = self._ctx.Event()
        self._supervisor: threading.Thread | None = None
        # Split the cores between workers so N processes do not each start N torch threads.
        self._threads = max(1, default_worker_count() // self.n_workers)

    def _spawn(self, slot: int) -> BaseProcess:
        proc = self._ctx.Process(
            target=_worker_main,
            args=(
                self._jobs,
                self.server_url,
                self.token,
                self._threads,
                os.getpid(),
                self._no_chain,
            ),
            name=f"hpo-local-worker-{slot}",
            daemon=True,
        )
        proc.start()
        return proc

    def start(self) -> LocalExecutor:
        self._procs = [self._spawn(i) for i in range(self.n_workers)]
        self._supervisor = threading.Thread(
            target=self._supervise, name="hpo-local-supervisor", daemon=True
        )
        self._supervisor.start()
        return self

    def _supervise(self) -> None:
        """Replace worker processes that died (OOM killer, segfault, kill -9). Their
        trials are retried by the server's reaper once their heartbeats stop."""
        while not self._closing.wait(0.5):
            for slot, proc in enumerate(list(self._procs)):
                if not proc.is_alive() and not self._closing.is_set():
                    log.warning(
                        "local worker %s died (exit %s); restarting", proc.pid, proc.exitcode
                    )
                    self._procs[slot] = self._spawn(slot)

    def pids(self) -> list[int]:
        """Process ids of the current worker processes."""
        return [p.pid for p in self._procs if p.pid is not None]

    def enqueue(self, trial_ids: Sequence[int]) -> None:
        for trial_id in trial_ids:
            self._jobs.put(int(trial_id))

    def alive(self) -> int:
        return sum(p.is_alive() for p in self._procs)

    def live_trial_ids(self) -> set[int] | None:
        return None  # the job queue lives in this process: nothing can flush it

    def close(self, timeout: float = 10.0) -> None:
        """Let running trials end, then stop every process (terminating stragglers).

        Jobs not yet taken are dropped first: their trials stay ``queued`` in the
        database, which re-enqueues them when a server starts again.
        """
        self._closing.set()
        self._no_chain.set()
        try:
            while True:
                self._jobs.get_nowait()
        except (queue.Empty, OSError, ValueError):
            pass
        for _ in self._procs:
            self._jobs.put(_STOP)
        for proc in self._procs:
            proc.join(timeout)
            if proc.is_alive():
                proc.terminate()
                proc.join(2)
        self._procs.clear()

    def terminate(self) -> None:
        """Stop every process now (running trials are cut off)."""
        self._closing.set()
        self._no_chain.set()
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            proc.join(5)
        self._procs.clear()

    def __enter__(self) -> LocalExecutor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _worker_main(
    jobs: Any, server_url: str, token: str | None, threads: int, parent_pid: int, no_chain: Any
) -> None:
    """Body of one worker process: take trial ids until the stop sentinel, or until
    the parent is gone (a worker never outlives the service that owns it). A finish
    takes the study's next trial at once (a chain) while the executor is not closing
    and the parent lives; the server leases one only when no other trial waits."""
    # Ctrl-C reaches the whole process group; the parent decides how to shut down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    from hpo.client import APIError, Client
    from hpo.settings import get_settings
    from worker.job import run_trial
    from worker.presence import Presence

    torch.set_num_threads(threads)

    def chain(_spec: Any) -> bool:
        return not no_chain.is_set() and os.getppid() == parent_pid

    logging.basicConfig(level=logging.WARNING, format="%(processName)s %(message)s")
    with Client(server_url, token=token) as client:
        # Its own client: the beat thread must not share a connection with trials.
        beat_client = Client(server_url, token=token)
        presence = Presence(beat_client, ["cpu"], get_settings().heartbeat_interval).start()
        try:
            while True:
                try:
                    trial_id = jobs.get(timeout=1.0)
                except queue.Empty:
                    if os.getppid() != parent_pid:
                        return
                    continue
                if trial_id is _STOP:
                    return
                presence.status = "busy"
                try:
                    run_trial(trial_id, client=client, chain=chain)
                except APIError as err:
                    log.error("trial %s: server error: %s", trial_id, err.message)
                except Exception:
                    log.exception("trial %s: unexpected worker error", trial_id)
                presence.status = "idle"
        finally:
            presence.stop()
            beat_client.close()
