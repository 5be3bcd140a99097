"""The processes the chaos soak runs and breaks: an ``hpo server`` and ``hpo worker``
daemons on one PostgreSQL and one Redis, started the way a user starts them.

:class:`Fleet` owns the processes: the server (its log appended to ``server.log``
across restarts) and the daemons (``worker-<i>.log``), each daemon in a session of its
own so that a kill of the whole daemon reaches its slot processes too. :class:`Redis`
is the queue's server: a throw-away one (``tests/service_fixtures.py``, through
``benchmarks.services``) that can be restarted on its port, or one given by URL, which
can only be flushed. Nothing here decides what to break or when: ``chaos_faults`` does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks import services
from benchmarks.chaos_trainable import EVIDENCE_ENV

__all__ = ["SERVER_FAULT", "Daemon", "Fleet", "Redis", "redis_for_chaos"]

ROOT = Path(__file__).resolve().parents[1]
HPO = str(Path(sys.executable).parent / "hpo")
#: What the server's log holds for each 500 answer (it runs without an access log):
#: uvicorn logs an exception no handler turned into an answer at ERROR, with this line
#: (the same marker ``tests/e2e/test_fleet.py`` counts).
SERVER_FAULT = "Exception in ASGI application"


class Redis:
    """The queue's Redis: ``url``; :meth:`flushall`; :meth:`restart` (same port) when
    ``restartable`` (a throw-away server of ours, not one given by URL)."""

    def __init__(self, url: str, server: Any = None) -> None:
        self.url = url
        self._server = server  # a service_fixtures.RedisServer, or None

    @property
    def restartable(self) -> bool:
        return self._server is not None

    def flushall(self) -> None:
        import redis

        with redis.Redis.from_url(self.url, socket_timeout=5) as client:
            client.flushall()

    def restart(self, down: float) -> None:
        """Stop the server, wait ``down`` seconds, start it again on the same port."""
        assert self._server is not None, "a Redis given by URL is not ours to restart"
        self._server.stop()
        time.sleep(down)
        self._server.start()


@contextlib.contextmanager
def redis_for_chaos(url: str | None) -> Iterator[Redis]:
    """``url``'s Redis, else a throw-away ``redis-server`` (removed at the end)."""
    if url:
        yield Redis(url)
        return
    # The server object itself, not only its URL: the soak restarts it on its port.
    with services.redis_server() as server:
        yield Redis(server.url, server)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Daemon:
    """One ``hpo worker`` daemon: its place in the fleet and its current process."""

    index: int
    proc: subprocess.Popen[bytes]
    #: Process ids of the daemons that held this place before (killed or stopped).
    former: list[int] = field(default_factory=list)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def slot_pids(self) -> list[int]:
        """The daemon's slot processes now (spawned multiprocessing children; its
        resource tracker, also a child, is left out)."""
        pid = self.proc.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        slots = []
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                slots.append(int(child))
        return slots


class Fleet:
    """A server process and worker daemons sharing a database, a Redis and a folder
    (``root``: logs, artifacts, evidence). Call :meth:`stop` at the end."""

    def __init__(
        self,
        root: Path,
        *,
        database_url: str,
        redis_url: str,
        slots: int,
        heartbeat_timeout: float,
        heartbeat_interval: float = 1.0,
    ) -> None:
        self.root = root
        self.slots = slots
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = root / "logs"
        self.evidence = root / "evidence"
        for folder in (self.logs, self.evidence):
            folder.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "HPO_DATABASE_URL": database_url,
            "HPO_REDIS_URL": redis_url,
            "HPO_DATA_DIR": str(root / "data"),
            "HPO_ARTIFACT_DIR": str(root / "artifacts"),
            "HPO_SERVER_URL": self.url,
            "HPO_AUTH": "off",
            "HPO_HEARTBEAT_INTERVAL": str(heartbeat_interval),
            "HPO_HEARTBEAT_TIMEOUT": str(heartbeat_timeout),
            "HPO_RECONCILE_INTERVAL": "1",
            EVIDENCE_ENV: str(self.evidence),
            # The entrypoint lives in this repository.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        # The daemon splits the cores between its slots unless told otherwise; a token
        # of the caller's would be presented to a server that has auth off.
        for name in ("OMP_NUM_THREADS", "HPO_TOKEN", "HPO_API_TOKEN", "HPO_WORKER_TOKEN"):
            self.env.pop(name, None)
        self.server: subprocess.Popen[bytes] | None = None
        self.daemons: list[Daemon] = []

    # -- the server ------------------------------------------------------------------------
    def _spawn(
        self, args: list[str], log: Path, *, session: bool = False
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [HPO, *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=session,
            )

    @property
    def server_log(self) -> Path:
        return self.logs / "server.log"

    def start_server(self, *, wait: bool = True, timeout: float = 90.0) -> None:
        """Start ``hpo server`` (it migrates the database); with ``wait``, return once
        it answers (:meth:`wait_server`)."""
        args = ["server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "0"]
        self.server = self._spawn(args, self.server_log)
        if wait:
            self.wait_server(timeout)

    def wait_server(self, timeout: float = 90.0) -> None:
        """Wait until the server answers ``/healthz``; RuntimeError (with its log's
        tail) when it exits or stays silent for ``timeout`` s."""
        assert self.server is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.server.poll() is not None:
                raise RuntimeError(f"the server exited: {self.tail(self.server_log)}")
            time.sleep(0.1)
        raise RuntimeError(
            f"the server did not answer in {timeout:g}s: {self.tail(self.server_log)}"
        )

    def kill_server(self) -> int:
        """``kill -9`` the server; its process id."""
        assert self.server is not None
        self.server.kill()
        self.server.wait(30)
        return self.server.pid

    def server_errors(self) -> list[str]:
        """One line per 500 answer in the server's log so far (every run of the server):
        the exception its traceback ends with, when the log has it."""
        if not self.server_log.exists():
            return []
        lines = self.server_log.read_text(errors="replace").splitlines()
        found = []
        for at, line in enumerate(lines):
            if SERVER_FAULT not in line:
                continue
            # The traceback's lines are indented after its header; the exception is the
            # first line that is neither.
            after = (x for x in lines[at + 1 :] if x and not x[0].isspace())
            ends = next((x for x in after if not x.startswith("Traceback")), SERVER_FAULT)
            found.append(ends)
        return found

    # -- the daemons -----------------------------------------------------------------------
    def start_daemon(self, index: int | None = None) -> Daemon:
        """Start a daemon in place ``index`` (a replacement) or in a new place."""
        place = len(self.daemons) if index is None else index
        args = ["worker", "--gpus", "none", "--slots", str(self.slots)]
        proc = self._spawn(args, self.logs / f"worker-{place}.log", session=True)
        if index is None:
            daemon = Daemon(place, proc)
            self.daemons.append(daemon)
        else:
            daemon = self.daemons[index]
            daemon.former.append(daemon.proc.pid)
            daemon.proc = proc
        return daemon

    def kill_daemon(self, daemon: Daemon) -> list[int]:
        """``kill -9`` the daemon and its slot processes (its whole session); their
        process ids."""
        pids = [daemon.proc.pid, *daemon.slot_pids()]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.proc.pid, signal.SIGKILL)
        daemon.proc.wait(30)
        return pids

    def slot_owners(self) -> dict[int, Daemon]:
        """Slot process id -> its daemon, for the live daemons."""
        return {pid: d for d in self.daemons if d.alive() for pid in d.slot_pids()}

    def wait_registered(self, timeout: float) -> list[str]:
        """Wait until every live daemon has all its slots, each registered with a fresh
        heartbeat; return what is still wrong at the timeout (empty: all well)."""
        deadline = time.monotonic() + timeout
        while True:
            problems = self.registration_problems()
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(0.5)

    def registration_problems(self) -> list[str]:
        """Why each daemon place is not serving: dead, short of slots, or a slot not
        registered (``GET /api/v1/workers``) or stale there."""
        try:
            rows = httpx.get(f"{self.url}/api/v1/workers", timeout=10).raise_for_status().json()
        except httpx.HTTPError as err:
            return [f"workers list unavailable: {err}"]
        # A daemon registers once, with all its slots (cpu0, cpu1, ...).
        fresh = {w["name"]: len(w["devices"]) for w in rows if not w["stale"]}
        host = socket.gethostname()
        problems = []
        for daemon in self.daemons:
            if not daemon.alive():
                problems.append(f"worker {daemon.index}: daemon {daemon.proc.pid} is not running")
                continue
            slots = daemon.slot_pids()
            registered = fresh.get(f"{host}:{daemon.proc.pid}", 0)
            if len(slots) < self.slots or registered != self.slots:
                problems.append(
                    f"worker {daemon.index} (pid {daemon.proc.pid}): {len(slots)} of "
                    f"{self.slots} runners, {registered} slots registered fresh"
                )
        return problems

    def worker_log_lines(self, marker: str) -> list[str]:
        """Lines of the workers' logs that contain ``marker``, each after its log's name."""
        return [
            f"{path.name}: {line.strip()}"
            for path in sorted(self.logs.glob("worker-*.log"))
            for line in path.read_text(errors="replace").splitlines()
            if marker in line
        ]

    # -- the end ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the daemons warmly (SIGTERM; kill after 30 s), then the server."""
        for daemon in self.daemons:
            if daemon.alive():
                daemon.proc.send_signal(signal.SIGTERM)
        for daemon in self.daemons:
            try:
                daemon.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill_daemon(daemon)
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(30)

    @staticmethod
    def tail(path: Path, chars: int = 3000) -> str:
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"
