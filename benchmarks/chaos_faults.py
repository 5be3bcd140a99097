"""The faults the chaos soak injects, when, and the log of what it did.

Six kinds (:data:`KINDS`), one at a time, each followed by what an operator would do:

* ``worker_kill9``: ``kill -9`` of a whole worker daemon (its slot processes too), then
  a new daemon in its place;
* ``slot_kill9``: ``kill -9`` of one slot process (the child of a daemon that runs
  trials), one running a trial when there is one within ``BUSY_WAIT`` s; its daemon
  starts a new slot by itself;
* ``server_kill9``: ``kill -9`` of the server, restarted 0.3-9 s later on its port;
* ``redis_flushall``: ``FLUSHALL`` of the queue's Redis;
* ``redis_restart``: Redis stopped and started again on its port (a throw-away Redis
  only: one given by URL is not ours to restart);
* ``worker_sigterm``: SIGTERM to a worker daemon (it hands its trials back and leaves),
  then a new daemon in its place.

:class:`Injector` spreads at most ``max_faults`` over a time window: the i-th at a
random moment early in the i-th equal share of the window's first ``FAULT_SHARE``
(none after the window), and never sooner than
``MIN_GAP`` s after the previous fault's recovery ended; the first faults go through
every kind in a shuffled order, so a run with at least as many faults as kinds (and
the time for them) injects each kind. Every fault is
logged with its time, what it hit and how long it took (:class:`Fault`).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from benchmarks.chaos_fleet import Daemon, Fleet, Redis

__all__ = ["KINDS", "MIN_GAP", "Fault", "Injector"]

KINDS = (
    "worker_kill9",
    "slot_kill9",
    "server_kill9",
    "redis_flushall",
    "redis_restart",
    "worker_sigterm",
)
#: Least seconds between the end of one fault and the start of the next.
MIN_GAP = 3.0
#: The part of the window faults are planned in: the rest lets the fleet run without
#: faults for a while before the end (and gives overrunning recoveries room).
FAULT_SHARE = 0.85
#: How long a slot kill waits for a slot that runs a trial.
BUSY_WAIT = 10.0
#: How long a SIGTERMed daemon may take to hand its trials back and leave.
LEAVE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``at`` (seconds since the soak began) it started, ``took``
    seconds until the fleet was whole again on our side (restarts done), and what
    it hit (``detail``). ``ok`` is False when the recovery step itself failed."""

    kind: str
    at: float
    wall: float  # time.time() when it started
    took: float
    detail: str
    ok: bool = True
    #: (process id, time.time()) of each worker process this fault SIGKILLed.
    killed: tuple[tuple[int, float], ...] = ()


class Injector:
    """Injects faults into ``fleet`` from a thread of its own (:meth:`start`) until
    ``max_faults`` are done, the window ends, or :meth:`stop` is called."""

    def __init__(
        self,
        fleet: Fleet,
        redis: Redis,
        *,
        rng: random.Random,
        max_faults: int,
        window: float,
        began: float,
        log_path: Path,
    ) -> None:
        self.fleet = fleet
        self.redis = redis
        self.rng = rng
        self.max_faults = max_faults
        self.window = window
        self.began = began  # time.monotonic() when the soak began
        self.log_path = log_path
        self.kinds = [k for k in KINDS if k != "redis_restart" or redis.restartable]
        self.faults: list[Fault] = []
        self._killed: list[tuple[int, float]] = []  # what the fault under way killed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-injector", daemon=True)

    def start(self) -> Injector:
        self._thread.start()
        return self

    def stop(self, timeout: float = 120.0) -> None:
        """Inject no more; wait for a fault under way to finish its recovery."""
        self._stop.set()
        self._thread.join(timeout)

    def plan(self) -> list[str]:
        """The kinds in injection order: every kind once, shuffled, then at random."""
        first = self.rng.sample(self.kinds, len(self.kinds))
        rest = [self.rng.choice(self.kinds) for _ in range(max(0, self.max_faults - len(first)))]
        return [*first, *rest][: self.max_faults]

    def _run(self) -> None:
        plan = self.plan()
        share = FAULT_SHARE * self.window / max(1, len(plan))
        end = self.began + self.window
        ready = self.began  # when the previous fault's recovery ended
        for i, kind in enumerate(plan):
            # At a random moment of the first 60 % of its share of the window, and at
            # least MIN_GAP after the previous one's recovery (which may overrun).
            due = self.began + share * (i + self.rng.uniform(0.1, 0.6))
            due = max(due, ready + MIN_GAP)
            if due > end or self._stop.wait(max(0.0, due - time.monotonic())):
                return
            at, wall = time.monotonic(), time.time()
            self._killed = []
            try:
                detail, ok = getattr(self, f"_{kind}")()
            except Exception as err:  # logged and counted: the soak goes on
                detail, ok = f"injection failed: {type(err).__name__}: {err}", False
            ready = time.monotonic()
            took = ready - at
            fault = Fault(kind, at - self.began, wall, took, detail, ok, tuple(self._killed))
            self.faults.append(fault)
            with self.log_path.open("a") as log:
                log.write(json.dumps(asdict(fault)) + "\n")

    # -- the kinds: each says what it hit and whether its recovery step went well; the
    # processes it kills go to self._killed
    def _killed_now(self, pids: list[int]) -> list[int]:
        now = time.time()
        self._killed += [(pid, now) for pid in pids]
        return pids

    def _live_daemon(self) -> Daemon:
        live = [d for d in self.fleet.daemons if d.alive()]
        if not live:
            raise RuntimeError("no live worker daemon")
        return self.rng.choice(live)

    def _worker_kill9(self) -> tuple[str, bool]:
        daemon = self._live_daemon()
        pids = self._killed_now(self.fleet.kill_daemon(daemon))
        time.sleep(self.rng.uniform(0.2, 2.0))
        new = self.fleet.start_daemon(daemon.index)
        return f"worker {daemon.index}: killed pids {pids}, restarted as {new.proc.pid}", True

    def _slot_kill9(self) -> tuple[str, bool]:
        # A slot running a trial, waiting a little for one (after a restart the slots
        # are still starting); else any slot.
        deadline = time.monotonic() + BUSY_WAIT
        while True:
            owners = self.fleet.slot_owners()
            busy = self._busy_slots(set(owners))
            if busy or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        pool = sorted(busy or owners)
        if not pool:
            raise RuntimeError("no slot process to kill")
        pid = self.rng.choice(pool)
        with_trial = "running a trial" if busy else "idle"
        try:
            os.kill(pid, signal.SIGKILL)
            self._killed_now([pid])
        except ProcessLookupError:
            return f"slot {pid} of worker {owners[pid].index} had already ended", True
        return f"slot {pid} of worker {owners[pid].index} ({with_trial})", True

    def _busy_slots(self, slots: set[int]) -> list[int]:
        """Our slot processes that the server says run a trial now (a trial runs in a
        runner of its daemon, named ``<daemon>/<runner pid>``)."""
        base = f"{self.fleet.url}/api/v1"
        try:
            rows = httpx.get(f"{base}/workers", timeout=5).json()
            running = [t for w in rows for t in w["current_trials"]]
            names = [httpx.get(f"{base}/trials/{t}", timeout=5).json() for t in running]
        except (httpx.HTTPError, ValueError):
            return []
        workers = [str(t.get("worker") or "") for t in names]
        pids = {int(n.rsplit("/", 1)[1]) for n in workers if "/" in n}
        return sorted(pids & slots)

    def _server_kill9(self) -> tuple[str, bool]:
        pid = self.fleet.kill_server()
        down = self.rng.uniform(0.3, 9.0)
        time.sleep(down)
        started = time.monotonic()
        self.fleet.start_server()
        up = time.monotonic() - started
        new = self.fleet.server.pid  # type: ignore[union-attr]
        return f"server {pid} killed, restarted after {down:.1f}s, {new} up in {up:.1f}s", True

    def _redis_flushall(self) -> tuple[str, bool]:
        self.redis.flushall()
        return "FLUSHALL", True

    def _redis_restart(self) -> tuple[str, bool]:
        down = self.rng.uniform(0.2, 3.0)
        self.redis.restart(down)
        return f"redis restarted on its port after {down:.1f}s", True

    def _worker_sigterm(self) -> tuple[str, bool]:
        daemon = self._live_daemon()
        pid = daemon.proc.pid
        daemon.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            code = daemon.proc.wait(LEAVE_TIMEOUT)
            left, ok = f"left in {time.monotonic() - started:.1f}s (exit {code})", code == 0
        except subprocess.TimeoutExpired:
            self._killed_now(self.fleet.kill_daemon(daemon))
            left, ok = f"did not leave within {LEAVE_TIMEOUT:g}s: killed", False
        new = self.fleet.start_daemon(daemon.index)
        return f"worker {daemon.index} (pid {pid}) {left}, replaced by {new.proc.pid}", ok
