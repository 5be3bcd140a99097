"""Chaos soak: run studies on a real fleet while breaking it, then check that nothing
was lost, doubled or wrongly failed.

    python -m benchmarks.chaos [--minutes 10] [--workers 3] [--slots 2] [--trials N]
        [--heartbeat-timeout 5] [--seed 0] [--max-faults N]
        [--database-url URL] [--redis-url URL] [--out DIR]

A throw-away PostgreSQL and Redis (``benchmarks.services``; or yours by URL: the soak
FLUSHALLs that Redis, and cannot restart it), an ``hpo server`` process on a free
loopback port (``HPO_HEARTBEAT_TIMEOUT`` = ``--heartbeat-timeout``, heartbeats every
second) and ``--workers`` ``hpo worker`` daemons of ``--slots`` CPU slots each
(``benchmarks.chaos_fleet``). Studies run back to back, cycling through ``random``,
``asha`` (budgets 1, 3, 9) and ``random`` with the median stopping rule, on
``benchmarks.chaos_trainable:train``: 9 steps of 0.3 s, a checkpoint before every
report, evidence of every step fsynced per process. The studies are sized for 1.5 a
minute; ``--trials`` instead splits that many over them and ends the soak once they
were all created.

Meanwhile at most ``--max-faults`` (default 3 a minute) faults, spaced in time, every
kind once before any twice (``benchmarks.chaos_faults``): kill -9 of a worker daemon or
of one slot process, kill -9 of the server (back after 0.3-9 s), Redis FLUSHALL, Redis
restart, SIGTERM of a worker. After ``--minutes`` no study starts, the running one's
budget is closed to the trials it has, and the soak waits (up to ``SETTLE`` s) for it.

Then the table: faults by kind, and each invariant with its count and PASS/FAIL
(``benchmarks.chaos_checks``, plus 5xx answers in the server's log, leases the server
took from live workers (409 "fenced off" in their logs), workers not alive and
registered at the end, faults whose recovery step failed, studies not completed).
The exit status is 1 when any invariant fails. Logs, evidence and the fault log stay in
``--out`` (default: a temporary folder, removed when everything passed).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import random
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.chaos_checks import Evidence, Invariant, check_trials, kill_times
from benchmarks.chaos_evidence import StoredTrial, load_evidence, load_trials
from benchmarks.chaos_faults import KINDS, Fault, Injector
from benchmarks.chaos_fleet import Fleet, redis_for_chaos
from benchmarks.chaos_trainable import METRIC
from benchmarks.services import postgres_database
from hpo.client import APIError, Client, Conflict, InvalidRequest

__all__ = ["ChaosResult", "Options", "main", "run"]

ENTRYPOINT = "benchmarks.chaos_trainable:train"
#: Seconds the last study may take to end once the soak's time is up.
SETTLE = 180.0
STUDY_KINDS = ("random", "asha", "median")
#: Study statuses that may still change (the soak pauses none, but says so).
LIVE = ("running", "paused")
#: What a worker logs when the server refused its attempt as superseded (409).
FENCED = "fenced off"
#: Seconds a trial spends outside its steps (start, reports, finish, queueing), roughly.
TRIAL_OVERHEAD = 0.5


@dataclass
class Options:
    """What to run; the command line's options (see the module doc)."""

    minutes: float = 10.0
    workers: int = 3
    slots: int = 2
    trials: int | None = None
    heartbeat_timeout: float = 5.0
    seed: int = 0
    max_faults: int | None = None
    database_url: str | None = None
    redis_url: str | None = None
    out: Path | None = None
    epochs: int = 9
    step_seconds: float = 0.3
    settle: float = SETTLE

    @property
    def planned_studies(self) -> int:
        """1.5 studies a minute, and at least one of each kind."""
        return max(len(STUDY_KINDS), round(1.5 * self.minutes))

    @property
    def per_study(self) -> int:
        """Trials per study: ``trials`` split over the planned studies, else as many as
        the slots would run in a planned study's share of the time (no faults)."""
        if self.trials is not None:
            return max(1, math.ceil(self.trials / self.planned_studies))
        trial_seconds = self.epochs * self.step_seconds + TRIAL_OVERHEAD
        share = self.minutes * 60 / self.planned_studies
        return max(4, round(share * self.workers * self.slots / trial_seconds))

    @property
    def fault_budget(self) -> int:
        return self.max_faults if self.max_faults is not None else max(1, round(3 * self.minutes))


@dataclass
class ChaosResult:
    """What a soak found: ``passed`` when every invariant holds."""

    invariants: list[Invariant]
    faults: list[Fault]
    studies: list[str]
    trials: int
    seconds: float
    out: Path
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(i.passed for i in self.invariants)

    def invariant(self, name: str) -> Invariant:
        return next(i for i in self.invariants if i.name == name)

    def fault_counts(self) -> Counter[str]:
        return Counter(f.kind for f in self.faults)


def _spec(name: str, kind: str, trials: int, options: Options, seed: int) -> dict[str, Any]:
    strategy: dict[str, Any] = {"name": "random", "seed": seed}
    if kind == "asha":  # random sampler: no GP fitting on a small machine's server
        strategy = {**strategy, "name": "asha", "options": {"eta": 3, "sampler": "random"}}
    spec: dict[str, Any] = {
        "name": name,
        "objective": {"metric": METRIC, "direction": "minimize"},
        "space": {
            "x": {"type": "float", "low": 0.0, "high": 1.0},
            "y": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        "strategy": strategy,
        "budget": {
            "max_trials": trials,
            "max_parallel": options.workers * options.slots,
            "epochs": options.epochs,
            # Far more retries than faults can cost one trial: a failed trial is news.
            "max_retries": 20,
        },
        "train": {"entrypoint": ENTRYPOINT, "params": {"step_seconds": options.step_seconds}},
    }
    if kind == "median":
        spec["stopping"] = {"rule": "median", "warmup_steps": 2, "min_trials": 3}
    return spec


def _patiently(call: Any, timeout: float = 120.0) -> Any:
    """``call()`` retried while the server is away (the soak restarts it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except APIError as err:
            if isinstance(err, InvalidRequest | Conflict) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _create(client: Client, spec: dict[str, Any]) -> None:
    try:
        _patiently(lambda: client.create_study(spec))
    except Conflict:  # created by a try whose answer the killed server never sent
        pass


def _close_budget(client: Client, name: str) -> None:
    """Lower ``name``'s budget to the trials it has, so it completes once they end."""
    for _ in range(100):
        study = _patiently(lambda: client.get_study(name))
        if study.status == "completed" or study.n_trials >= study.max_trials:
            return
        try:
            _patiently(lambda s=study: client.update_study(name, max_trials=s.n_trials))
            return
        except InvalidRequest:  # a trial was created meanwhile: read again
            time.sleep(0.05)


def _run_studies(
    client: Client, options: Options, end: float, injector: Injector, names: list[str]
) -> None:
    """Studies back to back until ``end`` (then the running one is closed and awaited
    ``options.settle`` s at most) or until ``options.trials`` were created; the names
    of those created go to ``names``."""
    left = math.inf if options.trials is None else options.trials
    kinds = itertools.cycle(STUDY_KINDS)
    while left > 0 and time.monotonic() < end:
        kind = next(kinds)
        name = f"chaos-{len(names):02d}-{kind}"
        size = int(min(options.per_study, left))
        names.append(name)  # first: a create whose answer was lost may still have landed
        _create(client, _spec(name, kind, size, options, options.seed + len(names)))
        left -= size
        closed = False
        settle_by = math.inf
        while _patiently(lambda n=name: client.get_study(n)).status in LIVE:
            now = time.monotonic()
            if now >= end and not closed:
                injector.stop()  # the soak's time is up: no more faults
                _close_budget(client, name)
                closed, settle_by = True, now + options.settle
            if now > settle_by:
                break  # left running: the invariants say so
            time.sleep(0.5)


def _fleet_invariants(
    fleet: Fleet, injector: Injector, statuses: dict[str, str], names: list[str]
) -> list[Invariant]:
    five = Invariant("5xx answers (server log)")
    for error in fleet.server_errors():
        five.add(f"logs/server.log: {error}")
    workers = Invariant("workers not recovered")
    for problem in fleet.wait_registered(timeout=30.0):
        workers.add(problem)
    recoveries = Invariant("fault recoveries failed")
    for fault in injector.faults:
        if not fault.ok:
            recoveries.add(f"{fault.kind} at {fault.at:.0f}s: {fault.detail}")
    # A live worker loses its lease only when the server gives up on it (a server
    # restart counted as silence, say): kills leave no such line, a SIGTERM hands back.
    fenced = Invariant("leases lost by live workers")
    for line in fleet.worker_log_lines(FENCED):
        fenced.add(line)
    studies = Invariant("studies not completed")
    for name in names:
        if statuses.get(name) != "completed":
            studies.add(f"{name}: {statuses.get(name, 'missing')}")
    return [five, fenced, workers, recoveries, studies]


def run(options: Options) -> ChaosResult:
    """Run the soak (module doc) and return what it found; prints its progress and the
    table. Raises only when the fleet cannot start at all."""
    out = options.out or Path(tempfile.mkdtemp(prefix="hpo-chaos-"))
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(options.seed)
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(postgres_database(options.database_url))
        redis = stack.enter_context(redis_for_chaos(options.redis_url))
        fleet = Fleet(
            out,
            database_url=database,
            redis_url=redis.url,
            slots=options.slots,
            heartbeat_timeout=options.heartbeat_timeout,
        )
        stack.callback(fleet.stop)
        starting = time.monotonic()
        # The daemons' start-up (imports) overlaps the server's; they retry until it is up.
        fleet.start_server(wait=False)
        for _ in range(options.workers):
            fleet.start_daemon()
        fleet.wait_server()
        if problems := fleet.wait_registered(timeout=180.0):
            raise RuntimeError(f"the fleet did not start: {problems}")
        began = time.monotonic()
        print(f"chaos soak: fleet up in {began - starting:.1f}s, logs in {out}", flush=True)
        window = options.minutes * 60
        injector = Injector(
            fleet,
            redis,
            rng=rng,
            max_faults=options.fault_budget,
            window=window,
            began=began,
            log_path=out / "faults.jsonl",
        ).start()
        names: list[str] = []
        notes: list[str] = []
        with Client(fleet.url, token=None) as client:
            try:
                _run_studies(client, options, began + window, injector, names)
            except APIError as err:  # the server stayed away: check what there is
                notes.append(f"studies abandoned: the server stayed away ({err.message})")
        injector.stop()
        seconds = time.monotonic() - began
        statuses, trials = load_trials(database, names)
        evidence = load_evidence(fleet.evidence)
        invariants = check_trials(trials, evidence, kill_times(injector.faults))
        invariants += _fleet_invariants(fleet, injector, statuses, names)
        notes += _notes(trials, evidence)
    result = ChaosResult(invariants, injector.faults, names, len(trials), seconds, out, notes)
    print(render(result, options), flush=True)
    if result.passed and options.out is None:
        shutil.rmtree(out, ignore_errors=True)
    return result


def _notes(trials: list[StoredTrial], evidence: Evidence) -> list[str]:
    """Figures that are not invariants but explain them."""
    statuses = Counter(t.status for t in trials)
    attempts = sum(t.attempt for t in trials)
    attempts_of = [(t, evidence.get(t.key, {})) for t in trials]
    fenced = sum(
        any(e.get("error") == "Fenced" for e in a.of("raise"))
        for _t, attempts_ in attempts_of
        for a in attempts_.values()
    )
    returned = sum(
        sum(a.returned_at(t.epochs) for a in attempts_.values()) > 1 for t, attempts_ in attempts_of
    )
    errors = Counter((t.error or "").split(";")[0][:90] for t in trials if t.status == "failed")
    notes = [
        "trials by status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
        f"attempts: {attempts} ({attempts - len(trials)} beyond the first)",
        f"attempts fenced off mid-training (evidence): {fenced}",
        f"trials whose function returned at the final step in 2+ attempts: {returned}",
    ]
    notes += [f"failed {n}x: {reason}" for reason, n in errors.most_common(3)]
    return notes


def render(result: ChaosResult, options: Options) -> str:
    """The soak's report: settings, fault log, faults by kind, invariants, totals."""
    lines = [
        f"== chaos soak: {options.minutes:g} min, {options.workers} workers x "
        f"{options.slots} slots, heartbeat timeout {options.heartbeat_timeout:g}s, "
        f"seed {options.seed}",
        "",
        "faults (seconds since the start):",
    ]
    lines += [f"  {f.at:7.1f}s {f.kind:<15} {f.took:5.1f}s  {f.detail}" for f in result.faults]
    counts = result.fault_counts()
    lines += ["", f"{'fault':<34} {'count':>6}"]
    lines += [f"{kind:<34} {counts.get(kind, 0):>6}" for kind in KINDS]
    lines += ["", f"{'invariant':<34} {'count':>6}  verdict"]
    for inv in result.invariants:
        lines.append(f"{inv.name:<34} {inv.count:>6}  {'PASS' if inv.passed else 'FAIL'}")
        lines += [f"    e.g. {example}" for example in inv.examples]
        if inv.note:
            lines.append(f"    ({inv.note})")
    lines += [
        "",
        f"total: {result.trials} trials in {len(result.studies)} studies, "
        f"{len(result.faults)} faults, {result.seconds:.0f}s",
        *result.notes,
        f"verdict: {'PASS' if result.passed else 'FAIL'} (logs and evidence: {result.out})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chaos", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="how long faults are injected")
    parser.add_argument("--workers", type=int, default=3, help="worker daemons")
    parser.add_argument("--slots", type=int, default=2, help="CPU slots per worker")
    parser.add_argument("--trials", type=int, help="trials in all (default: as time allows)")
    parser.add_argument("--heartbeat-timeout", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-faults", type=int, help="default 3 a minute")
    parser.add_argument("--database-url", help="your PostgreSQL (default: a throw-away one)")
    parser.add_argument("--redis-url", help="your Redis, which gets FLUSHALLed (no restarts)")
    parser.add_argument("--out", type=Path, help="keep logs, evidence and the fault log here")
    args = parser.parse_args(argv)
    options = Options(**{k: v for k, v in vars(args).items()})
    return 0 if run(options).passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
