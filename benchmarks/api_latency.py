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
by value descending (``GET /studies/{name}/trials``); the study summary, which holds
the status counts and the best trial (``GET /studies/{name}``); a report (``POST
/trials/{id}/reports``) from half the running trials in turn, steps increasing, then
from the other half once the spec has ``stopping: {rule: median}``, whose decision needs
every finished trial's best value up to the step (the first such report after start-up,
a cold cache, is printed apart; steps past ``--reports`` find no peers, same work).

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
import itertools
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.engine import Engine

from benchmarks.dashboard_load import SPACE, build_database, make_trials
from benchmarks.services import postgres_database, sibling_database
from server.tables import Report, Study

__all__ = ["build_peer", "build_study", "main", "make_study_trials", "time_ours", "time_peer"]

STUDY = "api-latency"
PAGE = 50
WARMUP = 5
TARGET_MS = 50.0
OURS = ("trials page", "trials page by value", "trials page by value desc", "study summary")
OURS += ("report", "report (median rule)")
PEER = ("get_trials (all)", "get_trials + sort by value", "best_trial", "report")
PEER += ("report + should_prune",)
#: The peer call each of ours is compared with.
PAIRS = dict(zip(OURS, (PEER[0], PEER[1], PEER[1], PEER[2], PEER[3], PEER[4]), strict=True))
MEDIAN = {"rule": "median", "warmup_steps": 2, "min_trials": 5}
Running = list[list[int]]  # [trial id, attempt, last step] per running trial


def make_study_trials(n: int, reports: int) -> tuple[list[dict[str, Any]], Running]:
    """The dashboard-load trials with the ``min(100, n // 20)`` before the 4 queued ones
    made running (attempt 1, half the reports); and those as ``[id, attempt, step]``
    (ids are 1-based positions, as ``build_database`` assigns them)."""
    trials = make_trials(n, reports)
    running: Running = []
    half = reports // 2
    for i in range(n - 4 - max(4, min(100, n // 20)), n - 4):
        t = trials[i]
        latest = {s: v for _a, s, v in t["curve"]}  # in (attempt, step) order: the latest
        t.update(status="running", value=None, attempt=1, finished=None, last_step=half)
        t["curve"] = [(1, s, latest[s]) for s in range(1, half + 1) if s in latest]
        running.append([i + 1, 1, half])
    return trials, running


def build_study(url: str, trials: list[dict[str, Any]], reports: int) -> tuple[int, str]:
    """Migrate and load ``url`` (see the module doc); return the number of reports and
    the server's version."""
    build_database(url, trials, reports)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(update(Study).values(name=STUDY))
        n_reports = conn.scalar(select(func.count()).select_from(Report)) or 0
        version = str(conn.scalar(text("SHOW server_version")))
    vacuum(engine, ("trials", "reports"))
    return n_reports, version


def vacuum(engine: Engine, tables: tuple[str, ...]) -> None:
    """VACUUM ANALYZE until ``tables`` are all-visible (an autovacuum ANALYZE started by
    the bulk load holds the horizon back for a while), at most 10 tries."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(10):
            conn.execute(text("VACUUM ANALYZE"))
            left = conn.scalar(
                text("SELECT sum(relpages - relallvisible) FROM pg_class WHERE relname = ANY(:t)"),
                {"t": list(tables)},
            )
            if not left:
                break
            time.sleep(1)
    engine.dispose()


@contextlib.contextmanager
def serve(url: str) -> Iterator[str]:
    """The real app on ``url`` under uvicorn in a thread; yields the API base URL."""
    import uvicorn

    from hpo.embedded import bind_socket
    from hpo.settings import Settings
    from server.app import create_app
    from server.queue import NullQueue

    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=url, redis_url=None, auth="off")
        app = create_app(settings, queue=NullQueue(), migrate=False, run_scheduler=False)
        sock = bind_socket("127.0.0.1", 0)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not server.started:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError("the server failed to start")
                time.sleep(0.02)
            yield f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1"
        finally:
            server.should_exit = True
            thread.join(timeout=15)


def _repeat(
    call: Callable[[int], float | None], n: int, budget: float = float("inf"), warmup: int = WARMUP
) -> list[float]:
    """Seconds per call over ``n`` calls after ``warmup`` untimed ones (a call may return
    its own seconds, leaving out its set-up); stops early, after at least one, once
    ``budget`` seconds were timed."""
    for i in range(warmup):
        call(-1 - i)
    times: list[float] = []
    while len(times) < n and sum(times) <= budget:
        started = time.perf_counter()
        took = call(len(times))
        times.append(time.perf_counter() - started if took is None else took)
    return times


def _steps(running: Running) -> Iterator[list[int]]:
    """Round-robin over ``running``, each trial's step advanced as it comes up."""
    for t in itertools.cycle(running):
        t[2] += 1
        yield t


def time_ours(
    api: str, url: str, n: int, running: Running, requests: int, seed: int = 0
) -> tuple[dict[str, list[float]], float, int]:
    """Seconds per call per row of ``OURS``; the first median-rule report's seconds;
    how many timed median-rule reports answered stop."""
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, max(1, n - PAGE), size=requests + WARMUP)
    times: dict[str, list[float]] = {}
    decisions: list[str] = []
    with httpx.Client(base_url=api, timeout=120) as client:

        def get(path: str) -> Callable[[int], None]:
            return lambda i: client.get(path.format(o=offsets[i])).raise_for_status() and None

        def reporter(half: Running) -> Callable[[int], None]:
            turns = _steps(half)

            def post(_i: int) -> None:
                trial_id, attempt, step = next(turns)
                value = 0.5 + 0.4 * rng.random()
                body = {"attempt": attempt, "step": step, "value": value}
                body["metrics"] = {"val_loss": 1.0 - value, "lr": 1e-3}
                response = client.post(f"/trials/{trial_id}/reports", json=body)
                decisions.append(response.raise_for_status().json()["decision"])

            return post

        pages = f"/studies/{STUDY}/trials?limit={PAGE}&offset={{o}}"
        paths = (pages, f"{pages}&sort=value", f"{pages}&sort=value&order=desc")
        for key, path in zip(OURS[:4], (*paths, f"/studies/{STUDY}"), strict=True):
            times[key] = _repeat(get(path), requests)
        middle = len(running) // 2
        times["report"] = _repeat(reporter(running[:middle]), requests)
        engine = create_engine(url)  # the spec gains the median rule, as a new one would
        with engine.begin() as conn:
            spec = conn.scalar(select(Study.spec).where(Study.name == STUDY))
            conn.execute(update(Study).values(spec={**spec, "stopping": MEDIAN}))
        engine.dispose()
        median = reporter(running[middle:])
        cold = _repeat(median, 1, warmup=0)[0]
        decisions.clear()
        times["report (median rule)"] = _repeat(median, requests, warmup=WARMUP - 1)
    return times, cold, decisions[WARMUP - 1 :].count("stop")


# --------------------------------------------------------------------------- the peer


def _distribution(p: dict[str, Any]) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if p["type"] == "categorical":
        return CategoricalDistribution(p["choices"])
    kind = FloatDistribution if p["type"] == "float" else IntDistribution
    return kind(p["low"], p["high"], log=p.get("log", False))


def build_peer(url: str, trials: list[dict[str, Any]]) -> None:
    """Optuna's schema and study in ``url`` (by its own code), then ``trials`` copied
    into its tables (ids = 1-based positions, as ours), its sequences moved past them."""
    import optuna
    from optuna.distributions import distribution_to_json

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize")
    study_id = study._study_id
    dists = {k: _distribution(p) for k, p in SPACE.items()}
    as_json = {k: distribution_to_json(d) for k, d in dists.items()}
    states = {"completed": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL"}
    states |= {"running": "RUNNING", "queued": "WAITING"}
    t0 = datetime(2026, 1, 1)

    def at(seconds: float | None) -> datetime | None:
        return None if seconds is None else t0 + timedelta(seconds=seconds)

    def rows(table: str) -> Iterator[tuple[Any, ...]]:
        for i, t in enumerate(trials, start=1):
            if table == "trials":
                when = at(t["started"]), at(t["finished"])
                yield i, t["number"], study_id, states[t["status"]], *when
            elif table == "trial_params":
                yield from (
                    (i, k, dists[k].to_internal_repr(v), as_json[k]) for k, v in t["params"].items()
                )
            elif table == "trial_values" and t["status"] == "completed":
                yield i, 0, t["value"], "FINITE"
            elif table == "trial_intermediate_values":
                latest = {s: v for _a, s, v in sorted(t["curve"], key=lambda c: (c[1], c[0]))}
                yield from ((i, s, v, "FINITE") for s, v in latest.items())

    columns = {
        "trials": "trial_id, number, study_id, state, datetime_start, datetime_complete",
        "trial_params": "trial_id, param_name, param_value, distribution_json",
        "trial_values": "trial_id, objective, value, value_type",
        "trial_intermediate_values": "trial_id, step, intermediate_value, intermediate_value_type",
    }
    raw = storage.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, cols in columns.items():
            with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows(table):
                    copy.write_row(row)
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('trials', 'trial_id'), max(trial_id)) FROM trials"
        )
        raw.commit()
    finally:
        raw.close()
    vacuum(storage.engine, tuple(columns))


def time_peer(
    url: str, n: int, running: Running, requests: int, budget: float, seed: int = 0
) -> dict[str, list[float]]:
    """Seconds per call per row of ``PEER`` (see the module doc for what each is)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rdb = optuna.storages.RDBStorage(url)
    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {PEER[1]: []}
    last: list[Any] = []  # the latest fresh cache (warm once its get_trials ran)

    def fresh() -> Any:
        # What load_study(storage=url) builds, with the engine shared: a new trial cache.
        last[:] = [optuna.storages._CachedStorage(rdb)]
        return optuna.load_study(study_name=STUDY, storage=last[0])

    def load(_i: int) -> float:
        study = fresh()
        started = time.perf_counter()
        frozen = study.get_trials(deepcopy=False)
        _page = frozen[int(rng.integers(0, max(1, n - PAGE))) :][:PAGE]
        loaded = time.perf_counter()
        by_value = sorted(frozen, key=lambda t: (t.value is None, t.value or 0.0, t.number))
        _page = by_value[int(rng.integers(0, max(1, n - PAGE))) :][:PAGE]
        times[PEER[1]].append(time.perf_counter() - started)
        return loaded - started

    times[PEER[0]] = _repeat(load, requests, budget, warmup=0)
    warm = last[0]

    def best(_i: int) -> float:
        study = fresh()
        started = time.perf_counter()
        _best = study.best_trial
        return time.perf_counter() - started

    times[PEER[2]] = _repeat(best, requests, budget)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    study = optuna.load_study(study_name=STUDY, storage=warm, pruner=pruner)
    middle = len(running) // 2
    for key, half in ((PEER[3], running[:middle]), (PEER[4], running[middle:])):
        handles = {t[0]: optuna.trial.Trial(study, t[0]) for t in half}
        turns = _steps(half)

        def report(_i: int, prune: bool = key == PEER[4], turns=turns, handles=handles) -> None:
            trial_id, _attempt, step = next(turns)
            handles[trial_id].report(0.5 + 0.4 * rng.random(), step)
            if prune:
                handles[trial_id].should_prune()

        times[key] = _repeat(report, requests, budget)
    return times


# --------------------------------------------------------------------------- output


def _p(xs: list[float]) -> tuple[float, float]:
    return float(np.percentile(xs, 50)) * 1000, float(np.percentile(xs, 99)) * 1000


def report(head: str, ours: dict[str, list[float]], cold: float, stops: int, peer: Any) -> None:
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
