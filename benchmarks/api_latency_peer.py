"""The peer of the API-latency benchmark (``benchmarks.api_latency``): Optuna's
``RDBStorage`` on the same PostgreSQL server, loaded with the same trials, timed
through its public API (``pip install 'hpo-service[bench]'``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from benchmarks.api_latency_ours import PAGE, STUDY, Running, repeat, steps, vacuum
from benchmarks.dashboard_load import SPACE

__all__ = ["PEER", "build_peer", "time_peer"]

PEER = ("get_trials (all)", "get_trials + sort by value", "best_trial", "report")
PEER += ("report + should_prune",)


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

    times[PEER[0]] = repeat(load, requests, budget, warmup=0)
    warm = last[0]

    def best(_i: int) -> float:
        study = fresh()
        started = time.perf_counter()
        _best = study.best_trial
        return time.perf_counter() - started

    times[PEER[2]] = repeat(best, requests, budget)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    study = optuna.load_study(study_name=STUDY, storage=warm, pruner=pruner)
    middle = len(running) // 2
    for key, half in ((PEER[3], running[:middle]), (PEER[4], running[middle:])):
        handles = {t[0]: optuna.trial.Trial(study, t[0]) for t in half}
        turns = steps(half)

        def report(_i: int, prune: bool = key == PEER[4], turns=turns, handles=handles) -> None:
            trial_id, _attempt, step = next(turns)
            handles[trial_id].report(0.5 + 0.4 * rng.random(), step)
            if prune:
                handles[trial_id].should_prune()

        times[key] = repeat(report, requests, budget)
    return times
