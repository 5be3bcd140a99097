"""The worker daemon (``hpo worker``): one machine's devices, trials of any size on them.

The daemon registers its devices with the server once (``POST /api/v1/workers``,
repeated as its heartbeat), keeps a :class:`~worker.placement.DeviceLedger` of what its
running trials hold, and takes jobs from its pool's queues (``hpo.jobs.pool_queue``:
one per trial size), largest size first, only when the size fits what is free now. Each
trial runs in a runner process (``worker.runner``) pinned to the trial's placement by
``CUDA_VISIBLE_DEVICES``; runners are kept warm and reused for the same placement, and a
job is popped only for a ready idle runner, so none waits inside a busy process or in a
process still importing torch. The daemon talks to Redis only to take jobs; trials talk
to the server over HTTP.

On SIGTERM/SIGINT the daemon stops taking jobs and asks every runner to leave warmly (a
running trial stops at its next epoch and is handed back, resuming elsewhere from its
checkpoint); a second signal kills them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import time
from dataclasses import dataclass, field
from fractions import Fraction
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from hpo.jobs import queue_size
from hpo.vocabulary import DEFAULT_POOL
from worker.claims import Claim
from worker.gpus import Slot
from worker.placement import DeviceLedger, Placement
from worker.runner import DONE, READY, runner_main

__all__ = ["DaemonConfig", "run_daemon"]

log = logging.getLogger(__name__)

#: Seconds between reads of which queues exist (RQ's set of queue names).
QUEUE_REFRESH = 2.0
#: Seconds one wait for a job (BLPOP) or a runner's message lasts at most.
POLL = 0.5
#: Seconds the daemon waits for its first runners to be ready before it registers.
WARM_UP = 120.0
_PREFIX = "rq:queue:"


@dataclass(frozen=True)
class DaemonConfig:
    """What the daemon needs; everything else comes from ``HPO_*`` settings."""

    redis_url: str
    queue_name: str
    slots: tuple[Slot, ...]
    pool: str = DEFAULT_POOL
    burst: bool = False  # exit when the queues are empty (tests, batch jobs)


@dataclass(eq=False)
class _Runner:
    proc: BaseProcess
    conn: Connection
    placement: Placement
    ready: bool = False
    job: tuple[str, Fraction] | None = None  # (job id, size) it runs now
    used: bool = False
    retired: bool = False  # told to leave: never handed another job


@dataclass
class _Daemon:
    config: DaemonConfig
    ledger: DeviceLedger
    envs: dict[str, dict[str, str]]  # device -> the environment of a runner there
    name: str
    runners: list[_Runner] = field(default_factory=list)
    queues: dict[str, Fraction] = field(default_factory=dict)
    stopping: bool = False
    killed: bool = False

    def __post_init__(self) -> None:
        from redis import Redis

        self.redis = Redis.from_url(self.config.redis_url)
        self.claim = Claim(self.redis, self.name)
        self.ctx = mp.get_context("spawn")
        self.draining = self.ctx.Event()
        self._refreshed = 0.0

    # -- runners --------------------------------------------------------------------
    def env_of(self, placement: Placement) -> dict[str, str]:
        env = dict(self.envs[placement[0]])
        if self.ledger.gpus:  # exactly the placement's GPUs (a CPU slot hides them all)
            env["CUDA_VISIBLE_DEVICES"] = ",".join(placement)
        env["HPO_WORKER_NAME"] = self.name
        return env

    def spawn(self, placement: Placement) -> _Runner:
        ours, theirs = self.ctx.Pipe()
        label = "+".join(placement)
        proc = self.ctx.Process(
            target=runner_main,
            args=(
                self.env_of(placement),
                theirs,
                self.config.redis_url,
                os.getpid(),
                label,
                self.draining,
            ),
            name=f"hpo-runner-{label}",
        )
        proc.start()
        theirs.close()
        runner = _Runner(proc=proc, conn=ours, placement=placement)
        self.runners.append(runner)
        log.info("runner on %s: process %s", label, proc.pid)
        return runner

    def idle(self, placement: Placement) -> _Runner | None:
        for runner in self.runners:
            if runner.placement == placement and runner.job is None and runner.ready:
                if not runner.retired:
                    return runner
        return None

    def starting(self, placement: Placement) -> bool:
        return any(r.placement == placement and not r.ready for r in self.runners)

    def retire(self, runner: _Runner) -> None:
        """Tell an idle runner to leave; it is reaped when it exits."""
        if runner.retired:
            return
        runner.retired = True
        with contextlib.suppress(OSError):
            runner.conn.send(None)

    def make_room(self, placement: Placement) -> None:
        """Retire idle runners that have run a trial on any of ``placement``'s devices
        under another placement: they may hold memory on those GPUs."""
        for runner in list(self.runners):
            if (
                runner.job is None
                and not runner.retired
                and runner.used
                and runner.placement != placement
                and set(runner.placement) & set(placement)
            ):
                self.retire(runner)

    def listen(self, timeout: float) -> None:
        """Read what the runners said (ready, done), waiting up to ``timeout``; reap
        runners that exited, returning what their trial held."""
        conns = [r.conn for r in self.runners]
        ready = set(wait(conns, timeout)) if conns else set()
        if not conns and timeout:
            time.sleep(timeout)
        for runner in list(self.runners):
            kind = None
            if runner.conn in ready:
                try:
                    kind, _ = runner.conn.recv()
                except (EOFError, OSError):
                    kind = None
                if kind == READY:
                    runner.ready = True
                elif kind == DONE and runner.job is not None:
                    self.ledger.give(runner.placement, runner.job[1])
                    runner.job = None
            if kind is None and not runner.proc.is_alive():
                self.reap(runner)

    def reap(self, runner: _Runner) -> None:
        runner.proc.join(0)
        if runner.job is not None:
            log.warning(
                "runner on %s died (exit %s) running %s; the server retries its trial",
                "+".join(runner.placement),
                runner.proc.exitcode,
                runner.job[0],
            )
            self.ledger.give(runner.placement, runner.job[1])
        runner.conn.close()
        self.runners.remove(runner)

    # -- jobs -----------------------------------------------------------------------
    def refresh(self) -> None:
        now = time.monotonic()
        if now - self._refreshed < QUEUE_REFRESH and self.queues:
            return
        self._refreshed = now
        found = {}
        for key in self.redis.smembers("rq:queues"):
            name = _text(key)[len(_PREFIX) :]
            size = queue_size(name, self.config.queue_name, self.config.pool)
            if size is not None and self.ledger.ever_fits(size):
                found[name] = size
        self.queues = dict(sorted(found.items(), key=lambda item: -item[1]))

    def reserve(self) -> None:
        """Hold room for the largest waiting job that does not fit now, when smaller
        trials share the pool (``worker.claims``: one daemon per waiting job drains
        for it, the one with the most room first); set ``draining`` while held, so the
        runners ask for no next trial with a finish."""
        smallest = min(self.queues.values(), default=Fraction(0))
        held = False
        for name, size in self.queues.items():  # largest first
            # Only a size with smaller ones beside it can starve: trials of one size
            # hand their devices to each other.
            if size <= smallest or self.ledger.fits(size):
                continue
            waiting = int(self.redis.llen(_PREFIX + name))
            if not waiting:
                continue
            held = self.claim.hold(name, waiting, self.ledger.room_for(size))
            break  # the largest waiting size only: claimed by us or by other daemons
        if not held:
            self.claim.release()
            self.draining.clear()
        else:
            self.draining.set()

    def unreserve(self) -> None:
        self.claim.release()
        self.draining.clear()

    def take(self) -> bool:
        """Pop one job that fits now for a ready idle runner and hand it over; start
        runners for waiting jobs that have none. Whether a job was handed."""
        self.refresh()
        self.reserve()
        held = self.claim.queue
        floor = self.queues[held] if held is not None else Fraction(0)
        keys: list[str] = []
        for name, size in self.queues.items():
            if size < floor:  # holding room for a bigger trial
                continue
            placement = self.ledger.where(size)
            if placement is None:
                continue
            if self.idle(placement) is not None:
                keys.append(_PREFIX + name)
            elif not self.starting(placement) and self.redis.llen(_PREFIX + name):
                self.spawn(placement)
        if not keys:
            self.listen(POLL)
            return False
        popped = self.redis.blpop(keys, timeout=POLL)
        if popped is None:
            self.listen(0)
            return False
        key, raw = popped
        name, job_id = _text(key)[len(_PREFIX) :], _text(raw)
        size = self.queues[name]
        placement = self.ledger.take(size)
        runner = self.idle(placement)
        if runner is None:  # cannot happen: nothing changed since the check above
            self.ledger.give(placement, size)
            self.redis.lpush(key, raw)
            return False
        self.hand(runner, job_id, name, size)
        return True

    def hand(self, runner: _Runner, job_id: str, name: str, size: Fraction) -> None:
        try:
            runner.conn.send((job_id, name))
        except OSError:  # died since it said ready: the job goes back to the front
            self.ledger.give(runner.placement, size)
            self.redis.lpush(_PREFIX + name, job_id)
            self.reap(runner)
            return
        runner.job, runner.used = (job_id, size), True
        self.make_room(runner.placement)

    def queued(self) -> int:
        return sum(int(self.redis.llen(_PREFIX + name)) for name in self.queues)

    # -- shutdown -------------------------------------------------------------------
    def stop(self, signum: int, _frame: object) -> None:
        if self.stopping:  # second signal: stop now
            self.killed = True
        self.stopping = True
        for runner in self.runners:
            if runner.proc.is_alive() and runner.proc.pid:
                os.kill(runner.proc.pid, signal.SIGKILL if self.killed else signal.SIGTERM)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def run_daemon(config: DaemonConfig) -> int:
    """Run trials until SIGTERM/SIGINT (or, with ``burst``, until no job waits)."""
    from redis.exceptions import RedisError

    from hpo.settings import get_settings
    from worker.job import process_client, worker_name
    from worker.presence import Presence

    devices = [slot.devices[0] if slot.devices else slot.name for slot in config.slots]
    envs = {device: dict(slot.env) for device, slot in zip(devices, config.slots, strict=True)}
    ledger = DeviceLedger(devices, gpus=any(slot.devices for slot in config.slots))
    daemon = _Daemon(config=config, ledger=ledger, envs=envs, name=worker_name())
    signal.signal(signal.SIGTERM, daemon.stop)
    signal.signal(signal.SIGINT, daemon.stop)
    for device in devices:  # one warm runner per device: the usual one-slot trials
        daemon.spawn((device,))
    # Register once they can run trials: a registered worker counts in its pool's size.
    warm_by = time.monotonic() + WARM_UP
    while not daemon.stopping and time.monotonic() < warm_by:
        if all(runner.ready for runner in daemon.runners):
            break
        daemon.listen(POLL)
    presence = Presence(
        process_client(), devices, get_settings().heartbeat_interval, pool=config.pool
    ).start()
    try:
        while True:
            presence.status = "busy" if daemon.ledger.busy() else "idle"
            if daemon.stopping:
                for runner in daemon.runners:
                    if runner.job is None:
                        daemon.retire(runner)
                if not daemon.runners:
                    return 0
                daemon.listen(POLL)
                continue
            try:
                handed = daemon.take()
                if (
                    config.burst
                    and not handed
                    and not daemon.ledger.busy()
                    and all(r.ready for r in daemon.runners)
                    and not daemon.queued()
                ):
                    daemon.stopping = True
            except RedisError as err:  # Redis restarting: keep the runners, try again
                log.warning("redis: %s; retrying", err)
                daemon.listen(1.0)
    finally:
        with contextlib.suppress(RedisError):
            daemon.unreserve()
        presence.stop()
