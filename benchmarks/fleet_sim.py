"""A shared GPU fleet, simulated on the real server: FIFO dispatch against fair share.

    python -m benchmarks.fleet_sim            # 200 GPU slots, 3 pools, 20 studies, 2 x 2 min
    python -m benchmarks.fleet_sim --smoke    # 16 slots, 7 studies, 2 x 24 s (CI)

The real server (API, scheduler, PostgreSQL, Redis) runs in this process; a second
process simulates the GPU machines (``benchmarks.fleet_sim_fleet``): they register in
their pool, take trial ids from their pool's queue, and start, report and finish each
trial over HTTP after a drawn duration, training nothing. The same scenario
(``benchmarks.fleet_sim_scenario``: studies of different sizes, weights, durations
and arrival times, 4-GPU and quarter-GPU trials among them) runs twice on fresh
services: once with ``HPO_DISPATCH=fifo`` (each study keeps ``max_parallel`` jobs
queued and workers take them in order, as before pools) and once with ``fair``.

Printed per dispatch:

* Jain's fairness index of each study's slot-time over its ideal (weighted max-min
  share of its pool, projects then priority, integrated over the run): 1 is perfect;
* the share of slot-time left idle while work waited (contended slot-time only);
* seconds (and pool trial-durations) from submitting a study under load to its first
  trial starting, p50 and p99;
* p99 latency of the requests that lease trials (``start``, ``finish`` + next trial);
* server CPU per trial (this process: API and scheduler), and PostgreSQL + Redis's.

Targets (issue 20): fairness >= 0.95, idle-while-waiting <= 2 %, first trial within
1.5 trial-durations at p99.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.control_plane import _cpu_seconds, service_cpu_seconds
from benchmarks.fleet_sim_fleet import Tally, jain, simulate
from benchmarks.fleet_sim_scenario import Plan, scenario
from benchmarks.services import postgres_database, redis_server_url

__all__ = ["Outcome", "main", "run_dispatch"]


@dataclass(frozen=True)
class Outcome:
    dispatch: str
    trials: int
    fairness: float
    worst_study: tuple[str, float]
    idle_waiting: float
    #: pool -> its share of contended slot-time left idle while work waited
    idle_by_pool: dict[str, float]
    first_p50: float
    first_p99: float
    first_p99_durations: float
    lease_p99_ms: float
    server_ms: float
    services_ms: float


def _child(url: str, redis_url: str, base: str, plan: Plan, seed: int, conn: Any) -> None:
    conn.send(simulate(url, redis_url, base, plan, seed))
    conn.close()


def run_dispatch(dispatch: str, plan: Plan, seed: int) -> Outcome:
    """One run of the scenario on fresh PostgreSQL + Redis servers with ``dispatch``."""
    from hpo.embedded import EmbeddedService
    from hpo.settings import Settings

    with (
        tempfile.TemporaryDirectory(prefix="hpo-fleet-sim-") as root,
        postgres_database() as database_url,
        redis_server_url() as redis_url,
    ):
        settings = Settings(
            data_dir=Path(root),
            database_url=database_url,
            redis_url=redis_url,
            artifact_dir=Path(root) / "artifacts",
            auth="off",
            dispatch=dispatch,  # type: ignore[arg-type]
        )
        with EmbeddedService(settings, workers=0) as service:
            ours, services = _cpu_seconds([os.getpid()]), service_cpu_seconds()
            receive, send = mp.get_context("spawn").Pipe(duplex=False)
            child = mp.get_context("spawn").Process(
                target=_child,
                args=(service.url, redis_url, settings.queue_name, plan, seed, send),
            )
            child.start()
            send.close()  # the child's end only: a child that dies ends recv() (EOFError)
            try:
                tally: Tally = receive.recv()
            except EOFError:
                raise RuntimeError(f"the simulated fleet died (exit {child.exitcode})") from None
            child.join(60)
            ours = _cpu_seconds([os.getpid()]) - ours
            services = service_cpu_seconds() - services
    return _outcome(dispatch, plan, tally, ours, services)


def _pctl(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _outcome(dispatch: str, plan: Plan, tally: Tally, ours: float, services: float) -> Outcome:
    ratios = {
        name: tally.used.get(name, 0.0) / ideal
        for name, ideal in tally.ideal.items()
        if ideal > 1.0  # at least one slot-second of share: a study that had a say
    }
    worst = max(ratios.items(), key=lambda kv: abs(1 - kv[1]), default=("-", float("nan")))
    contended = sum(tally.contended.values())
    pool_duration = {pool: statistics.fmean(d) for pool, d in tally.durations.items() if d}
    firsts, in_durations = [], []
    for study in plan.studies:
        if study.arrival <= 0 or study.name not in tally.created:
            continue
        start = tally.first_start.get(study.name)
        waited = (start if start is not None else float("inf")) - tally.created[study.name]
        firsts.append(max(0.0, waited))
        in_durations.append(max(0.0, waited) / pool_duration.get(study.pool, study.duration))
    trials = max(1, tally.completed)
    return Outcome(
        dispatch=dispatch,
        trials=tally.completed,
        fairness=jain(list(ratios.values())),
        worst_study=worst,
        idle_waiting=sum(tally.idle_waiting.values()) / contended if contended else 0.0,
        idle_by_pool={
            pool: tally.idle_waiting.get(pool, 0.0) / slot_seconds
            for pool, slot_seconds in sorted(tally.contended.items())
            if slot_seconds
        },
        first_p50=_pctl(firsts, 0.5),
        first_p99=_pctl(firsts, 0.99),
        first_p99_durations=_pctl(in_durations, 0.99),
        lease_p99_ms=_pctl(tally.lease_seconds, 0.99) * 1000,
        server_ms=ours / trials * 1000,
        services_ms=services / trials * 1000,
    )


def _print(plan: Plan, outcomes: list[Outcome]) -> None:
    slots = sum(p.slots for p in plan.pools)
    print(
        f"== fleet simulation: {slots} GPU slots in {len(plan.pools)} pools, "
        f"{len(plan.studies)} studies, {plan.horizon:g} s per dispatch"
    )
    print(
        "dispatch  trials  fairness  idle-waiting  first-p50-s  first-p99-s  "
        "first-p99-durations  lease-p99-ms  server-ms/trial  db+redis-ms/trial"
    )
    for o in outcomes:
        print(
            f"{o.dispatch:<8}  {o.trials:>6}  {o.fairness:>8.3f}  {o.idle_waiting:>11.1%}  "
            f"{o.first_p50:>11.2f}  {o.first_p99:>11.2f}  {o.first_p99_durations:>19.2f}  "
            f"{o.lease_p99_ms:>12.1f}  {o.server_ms:>15.2f}  {o.services_ms:>17.2f}"
        )
    print()
    for o in outcomes:
        name, ratio = o.worst_study
        print(f"{o.dispatch}: the study furthest from its share: {name} at {ratio:.2f} of it")
        pools = ", ".join(f"{pool} {idle:.1%}" for pool, idle in o.idle_by_pool.items())
        print(f"{o.dispatch}: idle while work waited, by pool: {pools}")
    if len(outcomes) == 2:
        fifo, fair = outcomes
        print(
            f"fair / fifo: fairness {fair.fairness / fifo.fairness:.2f}x, first trial p99 "
            f"{fair.first_p99 / max(fifo.first_p99, 1e-9):.2f}x"
        )
    print("targets: fairness >= 0.95, idle-waiting <= 2 %, first-p99-durations <= 1.5")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet_sim", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="16 slots, 7 studies, 24 s each")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument(
        "--dispatch", default="fifo,fair", help="comma-separated, run in this order"
    )
    args = parser.parse_args(argv)
    plan = scenario(args.seed, smoke=args.smoke)
    outcomes = [run_dispatch(d, plan, args.seed) for d in args.dispatch.split(",")]
    _print(plan, outcomes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
