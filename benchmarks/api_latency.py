"""API-latency benchmark: p50/p99 of the calls users and workers make on a study of
100,000 trials on PostgreSQL, against Optuna's RDBStorage on the same server, in one run.

    python -m benchmarks.api_latency [--trials 100000] [--reports 6] [--requests 300]
        [--peer-budget 20] [--database-url URL] [--smoke]

Setup (untimed): ``--database-url`` (an empty PostgreSQL database; the peer gets a
sibling database on its server, dropped at the end), else a throw-away server
(``benchmarks.services``). Ours: migrated by Alembic and bulk-loaded by the
dashboard-load benchmark's code, one running study over the demo space with
``--trials`` trials (mostly completed, some pruned and failed, 4 queued) and
``--reports`` reports per finished trial; the ``min(100, trials // 20)`` before the
queued ones are running, with half their reports. Then ``VACUUM ANALYZE`` (the state
autovacuum keeps a live database in). The real app (``create_app``: auth off, no queue,
no scheduler) serves it under uvicorn in a thread on ``hpo.embedded.bind_socket``.

Timed (p50/p99 over ``--requests`` calls after 5 warm-up calls), over HTTP with one
persistent httpx client: a page of 50 trials at random offsets, by number, by value and
by value descending (``GET /studies/{name}/trials``), and by value after a cursor (the
``X-Next-Cursor`` of the by-value pages: keyset paging at the same random depths); the
study summary, which holds
the status counts and the best trial (``GET /studies/{name}``); a report (``POST
/trials/{id}/reports``) from half the running trials in turn, steps increasing, then
from the other half once the spec has ``stopping: {rule: median}``, whose decision needs
every finished trial's best value up to the step (the first such report after start-up,
a cold cache, is printed apart; steps past ``--reports`` find no peers, same work).
Also printed: the full garbage collections while ours were timed, and the longest.

Peer (optuna, ``pip install 'hpo-service[bench]'``): ``RDBStorage`` creates its schema
and study; the same trials (states, params and distributions, values, each step's latest
intermediate value) are COPYed into its tables (its API adds tens a second). Timed
through its public API, as named in the tables: ``study.get_trials(deepcopy=False)``
(Optuna has no paging: a page needs them all; ``+ sort by value`` sorts and slices in
the same timed call) and ``study.best_trial``, each on a study loaded with a fresh trial
cache on the shared engine (the cache would hide the database cost);
``trial.report(value, step)`` on running trials; ``report`` + ``should_prune()`` under
``MedianPruner`` with a warm cache (a worker's long-lived study). A slow peer call
repeats only until ``--peer-budget`` seconds are spent (at least once: see ``n``).
Ratios are ours over the peer at p99 (below 1: ours is faster). Timings on a busy
machine are noisy; ratios are the point. Target: p99 < 50 ms per call.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import os
import sys
import time
from typing import Any

import numpy as np

from benchmarks.api_latency_ours import (
    OURS,
    build_study,
    make_study_trials,
    serve,
    time_ours,
)
from benchmarks.api_latency_peer import PEER, build_peer, time_peer
from benchmarks.services import postgres_database, sibling_database

__all__ = ["build_peer", "build_study", "main", "make_study_trials", "time_ours", "time_peer"]

TARGET_MS = 50.0
#: The peer call each of ours is compared with.
PAIRS = dict(
    zip(OURS, (PEER[0], PEER[1], PEER[1], PEER[1], PEER[2], PEER[3], PEER[4]), strict=True)
)


# --------------------------------------------------------------------------- output


def _p(xs: list[float]) -> tuple[float, float]:
    return float(np.percentile(xs, 50)) * 1000, float(np.percentile(xs, 99)) * 1000


def report(
    head: str,
    ours: dict[str, list[float]],
    cold: float,
    stops: int,
    pauses: list[float],
    peer: Any,
) -> None:
    """Print the tables (the smoke test reads their structure). ``peer`` is the peer's
    times, or a string saying why it was skipped."""
    print(head)
    print(f"{'call':<28}{'p50_ms':>11}{'p99_ms':>11}{'n':>6}  target p99<{TARGET_MS:g}ms")
    for key in OURS:
        p50, p99 = _p(ours[key])
        verdict = "met" if p99 < TARGET_MS else "MISSED"
        print(f"{key:<28}{p50:>11.2f}{p99:>11.2f}{len(ours[key]):>6}  {verdict}")
    met = sum(_p(ours[key])[1] < TARGET_MS for key in OURS)
    print(f"target p99 < {TARGET_MS:g} ms: met by {met} of {len(OURS)} calls")
    print(f"first median-rule report after start-up (cold cache): {cold * 1000:.1f} ms")
    print(f"median rule answered stop to {stops} of {len(ours[OURS[-1]])} timed reports")
    longest = max(pauses, default=0.0) * 1000
    print(f"full GC collections while ours were timed: {len(pauses)}, longest {longest:.1f} ms")
    if isinstance(peer, str):
        print(f"peer skipped: {peer}")
        return
    import optuna

    print(f"== peer: optuna {optuna.__version__} RDBStorage, same PostgreSQL server")
    print(f"{'call':<28}{'p50_ms':>11}{'p99_ms':>11}{'n':>6}")
    for key in PEER:
        p50, p99 = _p(peer[key])
        print(f"{key:<28}{p50:>11.2f}{p99:>11.2f}{len(peer[key]):>6}")
    print("== ratio ours/peer (p99; below 1: ours is faster)")
    print(f"{'call':<28}{'ours_ms':>11}{'peer_ms':>11}{'ratio':>9}  peer call")
    for key, theirs in PAIRS.items():
        mine, other = _p(ours[key])[1], _p(peer[theirs])[1]
        print(f"{key:<28}{mine:>11.2f}{other:>11.2f}{mine / other:>9.4f}  {theirs}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=6, help="per finished trial")
    parser.add_argument("--requests", type=int, default=300, help="timed calls per row")
    parser.add_argument("--peer-budget", type=float, default=20.0, help="seconds per peer row")
    parser.add_argument("--database-url", help="an empty postgresql+psycopg:// database")
    parser.add_argument("--smoke", action="store_true", help="2000 trials, 30 requests")
    args = parser.parse_args(argv)
    if args.smoke:
        args.trials, args.requests, args.peer_budget = 2000, 30, 2.0
    if args.trials < 200 or args.reports < 2 or args.requests < 1:
        parser.error("--trials >= 200, --reports >= 2, --requests >= 1")
    started = time.perf_counter()
    trials, running = make_study_trials(args.trials, args.reports)
    peer: Any = "optuna not installed (pip install 'hpo-service[bench]')"
    with postgres_database(args.database_url) as url, contextlib.ExitStack() as stack:
        n_reports, version = build_study(url, trials, args.reports)
        peer_url = None
        if importlib.util.find_spec("optuna") is not None:
            peer_url = stack.enter_context(sibling_database(url, "optuna"))
            build_peer(peer_url, trials)
        print(f"(built in {time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
        del trials  # the server shares this process: no big heap for its GC to walk
        gc.collect()
        with serve(url) as api:
            ours = time_ours(api, url, args.trials, [t[:] for t in running], args.requests)
        load = os.getloadavg()[0]  # the last minute: while ours were timed
        if peer_url is not None:
            peer = time_peer(peer_url, args.trials, running, args.requests, args.peer_budget)
    head = f"== api latency: {args.trials} trials, {n_reports} reports, PostgreSQL {version}, "
    head += f"{args.requests} request(s) per call, p50/p99 in ms, "
    head += f"load average {load:.1f} on {os.cpu_count()} CPUs"
    report(head, *ours, peer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
