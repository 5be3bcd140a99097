"""Trial-throughput benchmark: completed trials per second, end to end, with a
zero-cost objective, ours against Optuna's RDBStorage on the same database, same run.

    python -m benchmarks.throughput [--trials 2000] [--workers 4]
        [--backends embedded,fleet] [--strategies random,bayes]
        [--database-url URL] [--redis-url URL] [--smoke]

For each backend and strategy (harness and set-up: ``benchmarks.control_plane``):

* ``embedded``: our default set-up (SQLite file, local worker processes) against
  Optuna on a SQLite file;
* ``fleet``: our server on PostgreSQL with Redis/RQ and ``hpo worker`` daemons,
  against Optuna on a database of the same PostgreSQL server. Without
  ``--database-url``/``--redis-url`` throw-away servers are started
  (``benchmarks.services``; PostgreSQL with durability off, for both sides).

``random`` runs against Optuna's ``RandomSampler``, ``bayes`` (our GP) against
``TPESampler`` (Optuna's model-based default). The rate is completed trials over the
time from the moment every process was ready to the last stored completion; the ratio is
ours over the peer's (above 1: ours is faster). Machines are noisy: compare ratios.
``server_ms``/``worker_ms``: CPU milliseconds per trial our server process and our
worker processes used (all of them together), a steadier figure than the rate on a
shared machine.

A second table splits each side's CPU per trial by role: server (ours only), workers
(the processes that run trials: ours, or Optuna's ``study.optimize`` processes, set-up
not counted), services (the throw-away PostgreSQL and Redis servers; none on SQLite,
where storing is in-process, and none measured for servers given by URL) and the
total. ``ceiling`` is the rate the total
would allow if every core of this machine did nothing else (cores x 1000 / total ms):
on a CPU-bound machine the measured rate sits under it, and no rate can pass it
without spending less CPU per trial.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Iterator

from benchmarks.control_plane import Run, run_optuna, run_ours
from benchmarks.services import postgres_database, redis_server_url, sibling_database

__all__ = ["main"]


@contextlib.contextmanager
def _peer_sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="optuna-bench-") as root:
        yield f"sqlite:///{root}/optuna.db"


def _row(backend: str, ours: Run, peer: Run) -> str:
    return (
        f"{backend:<9} {ours.label:<16} {ours.rate:>9.1f} {peer.label:<22} "
        f"{peer.rate:>9.1f} {ours.rate / peer.rate:>7.2f} "
        f"{ours.cpu_ms(ours.server_cpu):>10.2f} {ours.cpu_ms(ours.worker_cpu):>10.2f}"
    )


def _cpu_row(backend: str, run: Run) -> str:
    """One side's CPU per trial by role (NaN parts of a side that has none count 0)."""
    parts = [run.cpu_ms(x) for x in (run.server_cpu, run.worker_cpu, run.service_cpu)]
    total = sum(0.0 if math.isnan(x) else x for x in parts)
    ceiling = (os.cpu_count() or 1) * 1000 / total if total > 0 else float("nan")
    cells = " ".join(f"{'-' if math.isnan(x) else f'{x:.2f}':>9}" for x in parts)
    return f"{backend:<9} {run.label:<22} {cells} {total:>9.2f} {ceiling:>9.1f} {run.rate:>9.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput")
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--backends", default="embedded,fleet")
    parser.add_argument("--strategies", default="random,bayes")
    parser.add_argument("--database-url", help="PostgreSQL for the fleet backend")
    parser.add_argument("--redis-url", help="Redis for the fleet backend")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.trials, args.workers = 40, 2
    backends = [b for b in args.backends.split(",") if b]
    strategies = [s for s in args.strategies.split(",") if s]
    print(
        f"== throughput: {args.trials} trials, {args.workers} workers, zero-cost objective "
        "(trials/s; ratio = ours / peer)"
    )
    print(
        f"{'backend':<9} {'ours':<16} {'trials/s':>9} {'peer':<22} {'trials/s':>9} "
        f"{'ratio':>7} {'server_ms':>10} {'worker_ms':>10}"
    )
    sys.stdout.flush()
    cpu_rows: list[str] = []
    for backend in backends:
        with contextlib.ExitStack() as stack:
            if backend == "fleet":
                pg = stack.enter_context(postgres_database(args.database_url))
                redis = stack.enter_context(redis_server_url(args.redis_url))
                peer_url = stack.enter_context(sibling_database(pg, "optuna"))
                ours = run_ours(
                    backend, strategies, args.trials, args.workers,
                    database_url=pg, redis_url=redis,
                )  # fmt: skip
            else:
                ours = run_ours(backend, strategies, args.trials, args.workers)
            for strategy, run in zip(strategies, ours, strict=True):
                if backend == "fleet":
                    peer = run_optuna(strategy, args.trials, args.workers, peer_url)
                else:
                    with _peer_sqlite() as url:
                        peer = run_optuna(strategy, args.trials, args.workers, url)
                print(_row(backend, run, peer))
                sys.stdout.flush()
                cpu_rows += [_cpu_row(backend, run), _cpu_row(backend, peer)]
    print()
    print(
        f"== CPU ms per trial by role ({os.cpu_count()} cores; ceiling = cores x 1000 / "
        "total, trials/s)"
    )
    print(
        f"{'backend':<9} {'run':<22} {'server':>9} {'workers':>9} {'services':>9} "
        f"{'total':>9} {'ceiling':>9} {'trials/s':>9}"
    )
    print("\n".join(cpu_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
