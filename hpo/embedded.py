"""The embedded service: server + local workers in one process tree on this machine.

Used by ``hpo demo`` and ``hpo server`` on the embedded default. Lazily imports ``server``
and ``worker`` (hpo/ is what users import; it must not pull in torch for a plain client).
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from typing import Any

from hpo.settings import Settings

__all__ = ["EmbeddedService", "bind_socket"]


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket; port 0 picks a free one."""
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) on accepted
    # connections only when the listening socket says TCP; otherwise every response
    # waits ~40 ms for the client's delayed ACK (measured: a 404 took 44 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class EmbeddedService:
    """Migrated database + API server in a background thread + local worker processes.

    Use as a context manager; ``url`` is where the API answers once entered. With
    ``workers=0`` no local workers start (trials wait in ``queued``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.host = host
        self.port = port
        self.log_level = log_level
        self.url = ""
        self.app: Any = None  # the running FastAPI app (start)
        self.executor: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> EmbeddedService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        import uvicorn

        from server.app import create_app
        from worker.local import LocalExecutor

        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        # Local workers reach a wildcard bind over loopback.
        reach = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        self.url = f"http://{reach}:{self.port}"
        settings = self.settings.model_copy(update={"server_url": self.url, "host": self.host})
        queue = None
        # Local workers present a token of their own (worker scope, in memory only), so
        # they work whether or not auth is on, and no operator token reaches them.
        local_token = secrets.token_urlsafe(32)
        # Fleet mode (Redis configured): the app enqueues on Redis for `hpo worker`
        # daemons; no local workers.
        if self.workers != 0 and not settings.redis_url:
            self.executor = LocalExecutor(self.url, self.workers, token=local_token).start()
            queue = self.executor
        app = create_app(settings, queue=queue, migrate=True, internal_token=local_token)
        #: The running app (in-process callers may look at its state, e.g. its caches).
        self.app = app
        config = uvicorn.Config(app, log_level=self.log_level, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="hpo-api"
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the embedded HPO server failed to start")
            time.sleep(0.02)

    def stop(self) -> None:
        # Workers first: they may still be reporting to the server.
        if self.executor is not None:
            self.executor.close(timeout=10)
            self.executor = None
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._server = None
        self._thread = None
