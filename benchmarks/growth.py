"""Growth benchmark: does the control plane slow down as a study grows? The rate over
the last 10 % of a study's trials divided by the rate over the first 10 %, ours
against Optuna's RDBStorage in the same run.

    python -m benchmarks.growth [--trials 10000] [--workers 4] [--strategies random]
        [--peer-trials N] [--smoke]

Both sides run ``--trials`` zero-cost trials with ``--workers`` processes on a SQLite
file, as ``benchmarks.throughput``'s embedded backend does (harness:
``benchmarks.control_plane``). The first window is the time from the start to the
completion of the first 10 % of the trials; the last window is the time the last 10 %
took to complete (their first completion measured from the completion just before
them). A ratio of 1 means no slowdown; below 1, later trials cost more than early
ones. Optuna's storage re-reads the study's trials as it grows, so its ratio falls;
``--peer-trials`` runs the peer on fewer trials when its full run would take too long
(its ratio is then at that size, printed with it).

A wall-clock rate also moves with whatever else the machine runs, and on a shared
machine that can swing a window's rate by a third. So each row also gives the CPU
milliseconds per trial over the two windows (ours: server and worker processes; the
peer: its processes; SQLite works inside them) and their ratio ``cpu_gr`` = first /
last, in the same sense as the growth. CPU time swings too, less: the same work costs
more CPU while other processes crowd the caches. Our workers do the same work for
every trial whatever the study's size, so the last line divides our server's CPU per
trial by theirs in each window: a ratio that only the server's own growth moves.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from benchmarks.control_plane import Run, run_optuna, run_ours

__all__ = ["main"]


def _row(run: Run) -> str:
    first, last = run.window_rate(True), run.window_rate(False)
    cpu_first, cpu_last = run.window_cpu_ms(True), run.window_cpu_ms(False)
    return (
        f"{run.label:<22} {len(run.finished):>7} {run.rate:>9.1f} {first:>9.1f} "
        f"{last:>9.1f} {last / first:>7.2f} {cpu_first:>9.2f} {cpu_last:>9.2f} "
        f"{cpu_first / cpu_last:>7.2f}"
    )


def _server_line(run: Run) -> str:
    """Our server's CPU per trial in units of our workers' CPU per trial, per window."""
    first, last = (
        run.window_cpu_ms(side, role="server") / run.window_cpu_ms(side, role="workers")
        for side in (True, False)
    )
    return (
        f"ours, server CPU / worker CPU per trial: first10% {first:.3f}, last10% {last:.3f}, "
        f"growth {first / last:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.growth")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--strategies", default="random")
    parser.add_argument("--peer-trials", type=int, help="trials of the peer's run")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.trials, args.workers, args.peer_trials = 60, 2, 60
    peer_trials = args.peer_trials or args.trials
    print(
        f"== growth: {args.trials} trials (peer {peer_trials}), {args.workers} workers, "
        "SQLite, zero-cost objective (trials/s; growth = last 10 % / first 10 %)"
    )
    print(
        f"{'run':<22} {'trials':>7} {'overall':>9} {'first10%':>9} {'last10%':>9} "
        f"{'growth':>7} {'cpu_first':>9} {'cpu_last':>9} {'cpu_gr':>7}"
    )
    sys.stdout.flush()
    for strategy in [s for s in args.strategies.split(",") if s]:
        (ours,) = run_ours("embedded", [strategy], args.trials, args.workers)
        print(_row(ours))
        sys.stdout.flush()
        with tempfile.TemporaryDirectory(prefix="optuna-growth-") as root:
            peer = run_optuna(strategy, peer_trials, args.workers, f"sqlite:///{root}/o.db")
        print(_row(peer))
        ours_growth = ours.window_rate(False) / ours.window_rate(True)
        peer_growth = peer.window_rate(False) / peer.window_rate(True)
        print()
        print(f"growth ratio, ours / peer: {ours_growth / peer_growth:.2f}")
        ours_cpu = ours.window_cpu_ms(True) / ours.window_cpu_ms(False)
        peer_cpu = peer.window_cpu_ms(True) / peer.window_cpu_ms(False)
        print(f"cpu growth ratio, ours / peer: {ours_cpu / peer_cpu:.2f}")
        print(_server_line(ours))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
