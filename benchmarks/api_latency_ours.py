"""Our side of the API-latency benchmark (``benchmarks.api_latency``): the study's
trials, the database, the real app under uvicorn, and the timed HTTP calls."""

from __future__ import annotations

import contextlib
import gc
import itertools
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.engine import Engine

from benchmarks.dashboard_load import build_database, make_trials
from server.tables import Report, Study

__all__ = [
    "MEDIAN",
    "OURS",
    "PAGE",
    "STUDY",
    "WARMUP",
    "GCPauses",
    "Running",
    "build_study",
    "make_study_trials",
    "repeat",
    "serve",
    "steps",
    "time_ours",
    "vacuum",
]

STUDY = "api-latency"
PAGE = 50
WARMUP = 5
OURS = ("trials page", "trials page by value", "trials page by value desc")
OURS += ("trials page by value, cursor", "study summary", "report", "report (median rule)")
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


def repeat(
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


def steps(running: Running) -> Iterator[list[int]]:
    """Round-robin over ``running``, each trial's step advanced as it comes up."""
    for t in itertools.cycle(running):
        t[2] += 1
        yield t


class GCPauses:
    """Full (generation 2) garbage collections while timing, and how long each took:
    one lands on whichever call allocated last (``server.app.freeze_startup_heap``)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._started)

    def __enter__(self) -> GCPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def time_ours(
    api: str, url: str, n: int, running: Running, requests: int, seed: int = 0
) -> tuple[dict[str, list[float]], float, int, list[float]]:
    """Seconds per call per row of ``OURS``; the first median-rule report's seconds;
    how many timed median-rule reports answered stop; the full GC pauses meanwhile."""
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, max(1, n - PAGE), size=requests + WARMUP)
    times: dict[str, list[float]] = {}
    decisions: list[str] = []
    cursors: list[str] = []  # X-Next-Cursor of the by-value pages: random depths
    with httpx.Client(base_url=api, timeout=120) as client, GCPauses() as gcs:

        def get(path: str) -> Callable[[int], None]:
            def call(i: int) -> None:
                cursor = cursors[i % len(cursors)] if "{c}" in path else ""
                response = client.get(path.format(o=offsets[i], c=cursor)).raise_for_status()
                if path.endswith("sort=value&offset={o}"):
                    cursors.append(response.headers["x-next-cursor"])

            return call

        def reporter(half: Running) -> Callable[[int], None]:
            turns = steps(half)

            def post(_i: int) -> None:
                trial_id, attempt, step = next(turns)
                value = 0.5 + 0.4 * rng.random()
                body = {"attempt": attempt, "step": step, "value": value}
                body["metrics"] = {"val_loss": 1.0 - value, "lr": 1e-3}
                response = client.post(f"/trials/{trial_id}/reports", json=body)
                decisions.append(response.raise_for_status().json()["decision"])

            return post

        pages = f"/studies/{STUDY}/trials?limit={PAGE}"
        paths = (f"{pages}&offset={{o}}", f"{pages}&sort=value&offset={{o}}")
        paths += (f"{pages}&sort=value&offset={{o}}&order=desc", f"{pages}&sort=value&cursor={{c}}")
        for key, path in zip(OURS[:5], (*paths, f"/studies/{STUDY}"), strict=True):
            times[key] = repeat(get(path), requests)
        middle = len(running) // 2
        times["report"] = repeat(reporter(running[:middle]), requests)
        engine = create_engine(url)  # the spec gains the median rule, as a new one would
        with engine.begin() as conn:
            spec = conn.scalar(select(Study.spec).where(Study.name == STUDY))
            conn.execute(update(Study).values(spec={**spec, "stopping": MEDIAN}))
        engine.dispose()
        median = reporter(running[middle:])
        cold = repeat(median, 1, warmup=0)[0]
        decisions.clear()
        times["report (median rule)"] = repeat(median, requests, warmup=WARMUP - 1)
    return times, cold, decisions[WARMUP - 1 :].count("stop"), gcs.pauses
