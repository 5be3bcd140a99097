"""The shared-fleet scenario of ``benchmarks.fleet_sim``: pools of simulated GPU
machines and studies of different sizes, weights, trial durations and arrival times,
drawn from a seed; and the ideal those studies' slot shares are judged against.

Pure (no I/O): :func:`scenario` draws the plan, :func:`fair_shares` says what each
study should hold at one moment (weighted max-min fairness in two levels: pools'
slots split equally between the projects that want them, then by study priority,
nobody given more than it wants), independent of the server's own rule
(``server.share``) so that the benchmark checks it rather than repeats it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Plan", "PoolPlan", "StudyPlan", "fair_shares", "scenario"]


@dataclass(frozen=True)
class PoolPlan:
    name: str
    machines: int
    gpus_per_machine: int

    @property
    def slots(self) -> int:
        return self.machines * self.gpus_per_machine


@dataclass(frozen=True)
class StudyPlan:
    name: str
    pool: str
    project: str
    priority: float
    #: ``resources.gpus``: None (one slot), a whole N, or a share 1/k
    gpus: float | None
    max_parallel: int
    max_trials: int
    #: mean seconds of one trial (drawn lognormally around it)
    duration: float
    #: seconds after the start when it is submitted
    arrival: float

    @property
    def size(self) -> float:
        return 1.0 if self.gpus is None else self.gpus


@dataclass(frozen=True)
class Plan:
    pools: tuple[PoolPlan, ...]
    studies: tuple[StudyPlan, ...]
    #: seconds the fleet is watched (studies still running then are stopped)
    horizon: float


def scenario(seed: int, *, smoke: bool = False) -> Plan:
    """200 GPU slots in 3 pools and 20 studies (``smoke``: 16 slots, 7 studies):
    large studies there from the start that alone would fill their pool, smaller ones
    arriving under load, 4-GPU trials and quarter-GPU trials among them."""
    rng = random.Random(seed)
    if smoke:
        pools = (PoolPlan("big", 2, 4), PoolPlan("mid", 1, 4), PoolPlan("small", 1, 4))
        horizon, unit = 24.0, 0.6
        layout = [  # pool, project, kind, count
            ("big", "vision", "long", 1),
            ("big", "speech", "small", 2),
            ("mid", "vision", "long", 1),
            ("mid", "speech", "small", 1),
            ("small", "nlp", "packed", 2),
        ]
    else:
        pools = (PoolPlan("a100", 16, 8), PoolPlan("v100", 6, 8), PoolPlan("t4", 3, 8))
        horizon, unit = 120.0, 1.0
        layout = [
            ("a100", "vision", "long", 2),
            ("a100", "vision", "multi", 1),
            ("a100", "speech", "long", 1),
            ("a100", "speech", "small", 3),
            ("a100", "nlp", "small", 2),
            ("v100", "speech", "long", 1),
            ("v100", "nlp", "long", 1),
            ("v100", "vision", "small", 3),
            ("t4", "nlp", "packed", 2),
            ("t4", "vision", "small", 2),
            ("t4", "speech", "packed", 2),
        ]
    slots = {p.name: p.slots for p in pools}
    studies = []
    for pool, project, kind, count in layout:
        for _ in range(count):
            made = _study(rng, len(studies), pool, project, kind, slots[pool], unit, horizon)
            studies.append(made)
    return Plan(pools, tuple(studies), horizon)


def _study(
    rng: random.Random,
    index: int,
    pool: str,
    project: str,
    kind: str,
    slots: int,
    unit: float,
    horizon: float,
) -> StudyPlan:
    """One study of a kind: ``long`` (there from the start, wants the whole pool),
    ``multi`` (4-GPU trials), ``packed`` (quarter-GPU trials), ``small`` (arrives
    later, a few dozen trials)."""
    priority = rng.choice([1.0, 1.0, 2.0, 3.0])
    duration = unit * rng.choice([2.0, 4.0, 8.0, 16.0])  # "seconds to minutes", scaled
    gpus: float | None = None
    if kind == "long":
        parallel, trials, arrival = slots, 100_000, rng.uniform(0, 2) * unit
    elif kind == "multi":
        gpus, parallel, trials, arrival = 4.0, max(1, slots // 8), 100_000, 1.0 * unit
    elif kind == "packed":
        gpus, parallel, trials = 0.25, slots * 4, 100_000
        arrival = rng.uniform(0, horizon / 3)
    else:
        parallel, trials = rng.choice([4, 8, 16]), rng.choice([16, 32, 48])
        arrival = rng.uniform(horizon / 8, horizon * 2 / 3)
    return StudyPlan(
        name=f"sim-{index:02d}-{kind}",
        pool=pool,
        project=project,
        priority=priority,
        gpus=gpus,
        max_parallel=parallel,
        max_trials=trials,
        duration=duration,
        arrival=round(arrival, 2),
    )


def _waterfill(capacity: float, wants: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Split ``capacity`` by weight, nobody above its want: name -> (weight, want)."""
    given = {name: 0.0 for name in wants}
    left = {name: want for name, (_, want) in wants.items() if want > 0}
    free = capacity
    while left and free > 1e-9:
        total = sum(wants[name][0] for name in left)
        share = {name: free * wants[name][0] / total for name in left}
        capped = [name for name in left if left[name] <= share[name]]
        if not capped:
            for name in left:
                given[name] += share[name]
            break
        for name in capped:
            given[name] += left[name]
            free -= left[name]
            del left[name]
    return given


def fair_shares(
    capacity: float, wants: dict[str, float], plans: dict[str, StudyPlan]
) -> dict[str, float]:
    """What each study should hold now, in slots: ``wants`` (slots each active study
    would take now) split two-level, equally between projects, then by priority."""
    by_project: dict[str, dict[str, float]] = {}
    for name, want in wants.items():
        by_project.setdefault(plans[name].project, {})[name] = want
    project_wants = {p: (1.0, sum(w.values())) for p, w in by_project.items()}
    per_project = _waterfill(capacity, project_wants)
    shares: dict[str, float] = {}
    for project, members in by_project.items():
        inner = {name: (plans[name].priority, want) for name, want in members.items()}
        shares.update(_waterfill(per_project[project], inner))
    return shares
