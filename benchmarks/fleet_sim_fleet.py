"""The simulated side of ``benchmarks.fleet_sim``, in a process of its own.

GPU machines register in their pool (one registration per machine, listing its GPUs,
repeated as a heartbeat), take trial ids from their pool's Redis queues as the worker
daemon does (``worker.daemon``: one queue per trial size, a job popped only when its
size fits the machine's free GPUs now, the largest size first), and run each trial over
the real API: ``start``, one report halfway, ``finish`` with ``lease_next`` after a
drawn duration (training nothing), then the trial the finish handed over, if any (the
server hands over only a trial of the size that ended). Four quarter-GPU trials share
one GPU.

An observer samples, every ``TICK`` seconds, what each study holds and wants, and
integrates slot-time: what each study got against its ideal share
(``fleet_sim_scenario.fair_shares``), and slot-time left idle while work waited.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis import Redis
from redis import asyncio as aioredis

from benchmarks.fleet_sim_scenario import Plan, StudyPlan, fair_shares
from hpo.jobs import pool_queue, trial_of_job
from worker.claims import Claim

__all__ = ["simulate"]

TICK = 0.25
_SPACE = {"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}}


@dataclass
class Tally:
    """What the simulated fleet saw, per study and in all."""

    holding: dict[str, float] = field(default_factory=dict)
    finished: dict[str, int] = field(default_factory=dict)
    created: dict[str, float] = field(default_factory=dict)
    first_start: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)  # slot-seconds held
    ideal: dict[str, float] = field(default_factory=dict)  # slot-seconds of fair share
    idle_waiting: dict[str, float] = field(default_factory=dict)  # slot-seconds
    contended: dict[str, float] = field(default_factory=dict)  # slot-seconds
    durations: dict[str, list[float]] = field(default_factory=dict)  # per pool
    lease_seconds: list[float] = field(default_factory=list)
    completed: int = 0


class Machine:
    """One simulated GPU machine of a pool, with its ledger of free GPUs."""

    def __init__(self, name: str, pool: str, gpus: int, claims: Redis) -> None:
        self.name, self.pool, self.gpus = name, pool, gpus
        self.free = float(gpus)
        #: its claim on room for a waiting bigger trial (``Simulation._reserve``)
        self.claim = Claim(claims, name)
        self.reserved = False
        self.changed = asyncio.Condition()

    def room_for(self, size: float) -> float:
        """As ``DeviceLedger.room_for``: how much of a trial of ``size`` fits now (the
        simulated ledger packs shares onto whole GPUs, so free room counts whole)."""
        return float(math.floor(self.free + 1e-9)) if size >= 1 else min(1.0, self.free)


class Simulation:
    def __init__(self, url: str, redis_url: str, queue_base: str, plan: Plan, seed: int) -> None:
        self.plan = plan
        self.plans = {s.name: s for s in plan.studies}
        self.http = httpx.AsyncClient(
            base_url=f"{url}/api/v1", timeout=60, limits=httpx.Limits(max_connections=64)
        )
        # a blocking pop per machine: more connections than redis-py's default pool
        self.redis = aioredis.Redis.from_url(redis_url, max_connections=4096)
        self.queue_base = queue_base
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.stop = asyncio.Event()
        # claims run synchronously (``worker.claims``), in threads
        self.claims = Redis.from_url(redis_url, max_connections=64)
        self.machines = [
            Machine(f"{p.name}-m{i:02d}", p.name, p.gpus_per_machine, self.claims)
            for p in plan.pools
            for i in range(p.machines)
        ]

    async def run(self) -> Tally:
        for project in sorted({s.project for s in self.plan.studies}):
            await self._post("/projects", json={"name": project})
        await self._register()
        started = time.monotonic()
        tasks = [asyncio.create_task(self._beats())]
        tasks += [asyncio.create_task(self._submit(s, started)) for s in self.plan.studies]
        tasks += [asyncio.create_task(self._daemon(machine)) for machine in self.machines]
        await self._observe(started)
        self.stop.set()
        for machine in self.machines:
            async with machine.changed:
                machine.changed.notify_all()
        for failure in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(failure, Exception):  # a broken simulation must not pass for a result
                raise failure
        await self.http.aclose()
        await self.redis.aclose()
        self.claims.close()
        return self.tally

    async def _post(self, path: str, json: dict[str, Any]) -> httpx.Response:
        """POST as a worker's client does: a dropped connection is tried again."""
        for attempt in range(5):
            try:
                return await self.http.post(path, json=json)
            except httpx.TransportError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _register(self) -> None:
        for m in self.machines:
            body = {
                "name": m.name,
                "host": m.name,
                "pid": 1,
                "devices": [str(g) for g in range(m.gpus)],
                "pool": m.pool,
            }
            answer = await self._post("/workers", json=body)
            answer.raise_for_status()

    async def _beats(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(5)
            await self._register()

    async def _submit(self, study: StudyPlan, started: float) -> None:
        await asyncio.sleep(max(0.0, started + study.arrival - time.monotonic()))
        spec = {
            "name": study.name,
            "project": study.project,
            "objective": {"metric": "val_loss", "direction": "minimize"},
            "space": _SPACE,
            "strategy": {"name": "random", "seed": 1},
            "budget": {
                "max_trials": study.max_trials,
                "max_parallel": study.max_parallel,
                "epochs": 1,
            },
            "train": {"model": "mlp", "dataset": "synthetic", "params": {}},
            "resources": {"pool": study.pool, "gpus": study.gpus},
            "priority": study.priority,
        }
        answer = await self._post("/studies", json=spec)
        if answer.status_code != 201:
            raise RuntimeError(f"study {study.name} refused: {answer.text}")
        self.tally.created[study.name] = time.monotonic()

    async def _daemon(self, machine: Machine) -> None:
        """The machine's worker daemon: pops a job only of a size that fits its free
        GPUs now, the largest size first, and runs it beside the machine's others."""
        sizes = sorted({s.size for s in self.plan.studies if s.pool == machine.pool}, reverse=True)
        if not sizes:
            return
        queues = {
            f"rq:queue:{pool_queue(self.queue_base, machine.pool, size)}": size for size in sizes
        }
        running: set[asyncio.Task[None]] = set()
        while not self.stop.is_set():
            floor = await self._reserve(machine, queues, sizes[-1])
            async with machine.changed:
                await machine.changed.wait_for(
                    lambda: machine.free + 1e-9 >= sizes[-1] or self.stop.is_set()
                )
                keys = [key for key, size in queues.items() if floor <= size <= machine.free + 1e-9]
                if not keys:  # holding room for a bigger trial: wait for some to free
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(machine.changed.wait(), 0.5)
                    continue
            if self.stop.is_set():
                break
            popped = await self.redis.blpop(keys, timeout=0.5)
            if popped is None:
                continue
            size = queues[popped[0].decode()]
            async with machine.changed:  # only this task takes room: it still fits
                machine.free -= size
            task = asyncio.create_task(self._trial(machine, popped[1].decode(), size))
            running.add(task)
            task.add_done_callback(running.discard)
        for failure in await asyncio.gather(*running, return_exceptions=True):
            if isinstance(failure, Exception):
                raise failure

    async def _reserve(self, machine: Machine, queues: dict[str, float], smallest: float) -> float:
        """As the daemon does (``worker.daemon``, ``worker.claims``): claim, for this
        machine, room for one of the largest waiting jobs of a size that does not fit
        now while smaller ones share the pool; the smallest size it may take meanwhile
        (0: none held)."""
        held = 0.0
        for key, size in queues.items():  # largest first
            if size <= smallest or size <= machine.free + 1e-9:
                continue
            waiting = await self.redis.llen(key)
            if not waiting:
                continue
            room = machine.room_for(size)
            if await asyncio.to_thread(machine.claim.hold, key[len("rq:queue:") :], waiting, room):
                held = size
            break
        if not held:
            await asyncio.to_thread(machine.claim.release)
        machine.reserved = held > 0
        return held

    async def _trial(self, machine: Machine, job: str, size: float) -> None:
        """A runner: starts the popped trial on ``size`` GPUs, then every trial its
        finishes hand over; gives the GPUs back at the end."""
        held = size
        try:
            spec = await self._start(job, f"{machine.name}/{id(asyncio.current_task())}")
            while spec is not None and not self.stop.is_set():
                spec, held = await self._run(machine, spec, held)
        finally:
            await self._give_back(machine, held)

    async def _start(self, job: str, worker: str) -> dict[str, Any] | None:
        trial_id = trial_of_job(job)
        began = time.perf_counter()
        answer = await self._post(f"/trials/{trial_id}/start", json={"worker": worker})
        self.tally.lease_seconds.append(time.perf_counter() - began)
        return answer.json() if answer.status_code == 200 else None  # else taken, stopped

    @staticmethod
    async def _give_back(machine: Machine, slots: float) -> None:
        async with machine.changed:
            machine.free += slots
            machine.changed.notify_all()

    async def _run(
        self, machine: Machine, spec: dict[str, Any], held: float
    ) -> tuple[dict[str, Any] | None, float]:
        """Run one trial on ``held`` slots of the machine already set aside (more are
        waited for, extra given back); the trial its finish handed over, if any, and
        the slots still set aside for it."""
        plan = self.plans[spec["study"]]
        beats = asyncio.create_task(self._heartbeats(spec))
        try:
            return await self._run_beating(machine, spec, held, plan)
        finally:
            beats.cancel()

    async def _heartbeats(self, spec: dict[str, Any]) -> None:
        """A started attempt is alive: beat as a worker does, from its start."""
        body = {"attempt": spec["attempt"]}
        while True:
            await asyncio.sleep(float(spec.get("heartbeat_interval") or 10.0))
            await self._post(f"/trials/{spec['trial_id']}/heartbeat", json=body)

    async def _run_beating(
        self, machine: Machine, spec: dict[str, Any], held: float, plan: StudyPlan
    ) -> tuple[dict[str, Any] | None, float]:
        async with machine.changed:
            need = plan.size - held
            await machine.changed.wait_for(
                lambda: machine.free + 1e-9 >= need or self.stop.is_set()
            )
            if self.stop.is_set():
                return None, held
            machine.free -= need
            if need < 0:
                machine.changed.notify_all()
        tally = self.tally
        tally.first_start.setdefault(plan.name, time.monotonic())
        tally.holding[plan.name] = tally.holding.get(plan.name, 0.0) + plan.size
        seconds = plan.duration * self.rng.lognormvariate(0.0, 0.3)
        try:
            trial, attempt = spec["trial_id"], spec["attempt"]
            await asyncio.sleep(seconds / 2)
            report = {"attempt": attempt, "step": 0, "value": 1.0}
            await self._post(f"/trials/{trial}/report", json=report)
            await asyncio.sleep(seconds / 2)
            if self.stop.is_set():
                return None, plan.size
            # a machine holding room for a bigger trial takes no next one with a finish
            lease = not machine.reserved
            body = {"attempt": attempt, "status": "completed", "value": 1.0, "lease_next": lease}
            began = time.perf_counter()
            answer = await self._post(f"/trials/{trial}/finish", json=body)
            tally.lease_seconds.append(time.perf_counter() - began)
            tally.completed += 1
            tally.finished[plan.name] = tally.finished.get(plan.name, 0) + 1
            tally.durations.setdefault(plan.pool, []).append(seconds)
            handed = answer.json().get("next_trial") if answer.status_code == 200 else None
            return handed, plan.size
        finally:
            tally.holding[plan.name] -= plan.size

    async def _observe(self, started: float) -> None:
        capacity = {p.name: float(p.slots) for p in self.plan.pools}
        tally, last = self.tally, time.monotonic()
        while time.monotonic() - started < self.plan.horizon:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            dt, last = now - last, now
            for pool, slots in capacity.items():
                wants = {}
                for s in self.plan.studies:
                    if s.pool != pool or s.name not in tally.created:
                        continue
                    left = s.max_trials - tally.finished.get(s.name, 0)
                    if left > 0:
                        wants[s.name] = min(s.max_parallel, left) * s.size
                if not wants:
                    continue
                held = {name: tally.holding.get(name, 0.0) for name in wants}
                for name, share in fair_shares(slots, wants, self.plans).items():
                    tally.ideal[name] = tally.ideal.get(name, 0.0) + share * dt
                    tally.used[name] = tally.used.get(name, 0.0) + held[name] * dt
                waiting = sum(wants.values()) - sum(held.values())
                if waiting > 1e-9:
                    idle = max(
                        0.0,
                        slots
                        - sum(
                            tally.holding.get(s.name, 0.0)
                            for s in self.plan.studies
                            if s.pool == pool
                        ),
                    )
                    tally.contended[pool] = tally.contended.get(pool, 0.0) + slots * dt
                    tally.idle_waiting[pool] = (
                        tally.idle_waiting.get(pool, 0.0) + min(idle, waiting) * dt
                    )


def simulate(url: str, redis_url: str, queue_base: str, plan: Plan, seed: int) -> Tally:
    """Run the simulated fleet against the server at ``url`` for the plan's horizon."""
    return asyncio.run(Simulation(url, redis_url, queue_base, plan, seed).run())


def jain(values: list[float]) -> float:
    """Jain's fairness index of ``values`` (1: all equal; 1/n: one has everything)."""
    if not values:
        return math.nan
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))
