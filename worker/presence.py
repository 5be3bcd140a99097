"""A worker process's presence on the server: registration repeated as its heartbeat.

Every worker process (a fleet daemon's slot or an embedded local worker) registers with
``POST /api/v1/workers`` and repeats it every ``interval`` seconds from a daemon thread,
so the server's Workers page lists it with its devices, status and last heartbeat.
A failed registration is logged and retried at the next beat: the server may restart.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence

from hpo.client import APIError, Client
from hpo.schemas import WorkerIn
from hpo.vocabulary import DEFAULT_POOL
from search.status import WorkerStatus
from worker.job import worker_name

__all__ = ["Presence"]

log = logging.getLogger(__name__)


class Presence:
    """Registers this process (``worker_name()``) and keeps the registration fresh.

    ``on_beat`` runs on the beat thread before each repeat (e.g. a check that the
    parent process is still alive). ``status`` is what the next registration says.
    """

    def __init__(
        self,
        client: Client,
        devices: Sequence[str],
        interval: float,
        on_beat: Callable[[], None] | None = None,
        *,
        pool: str = DEFAULT_POOL,
    ) -> None:
        self.client = client
        self.devices = list(devices) or ["cpu"]
        self.pool = pool
        self.interval = interval
        self.on_beat = on_beat
        self.status: WorkerStatus = "idle"
        self._done = threading.Event()

    def register(self, status: WorkerStatus | None = None) -> None:
        if status is not None:
            self.status = status
        body = WorkerIn(
            name=worker_name(),
            host=socket.gethostname(),
            pid=os.getpid(),
            devices=self.devices,
            pool=self.pool,
            status=self.status,
        )
        try:
            self.client.register_worker(body)
        except APIError as err:  # the server may be restarting: the next beat retries
            log.warning("worker registration failed: %s", err.message)

    def start(self) -> Presence:
        self.register()
        threading.Thread(target=self._beats, daemon=True, name="hpo-worker-beat").start()
        return self

    def stop(self) -> None:
        """Stop beating and tell the server this worker is gone."""
        self._done.set()
        self.register("stopped")

    def _beats(self) -> None:
        while not self._done.wait(self.interval):
            if self.on_beat is not None:
                self.on_beat()
            self.register()
