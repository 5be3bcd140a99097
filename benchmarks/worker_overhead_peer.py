"""The peer of the worker-overhead benchmark (``benchmarks.worker_overhead``): Optuna,
``--workers`` spawned processes on one SQLite ``RDBStorage``, each optimizing the same
trials as ours (``pip install 'hpo-service[bench]'``)."""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import tempfile
import time
from typing import Any

import torch

from benchmarks.worker_overhead_common import (
    BUILTIN_PARAMS,
    PATHS,
    Run,
    Setup,
    TrialTime,
    busy_trial,
)

__all__ = ["Peer"]


def _peer_objective(trial: Any, path: str, setup: Setup, done: list[tuple]) -> float:
    """The peer's objective: the same trial as ours, reporting every epoch; appends
    (number, inside, reporting, timed report calls) to ``done``."""
    import optuna

    from models import TrainConfig, build_model, load_dataset
    from models import train as train_model

    last = [0.0]

    def report(step: int, score: float, inside: float, reporting: float) -> bool:
        trial.report(score, step)
        last[0] = score
        return bool(trial.should_prune())

    lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
    epochs = setup.epochs[path]
    if path == "entrypoint":
        params = {"lr": lr, "units": trial.suggest_int("units", 32, 128)}
        inside, reporting = busy_trial(params, setup.seconds, epochs, report)
        # A mean over every call (ours: all but the last, which cannot carry its own time).
        done.append((trial.number, inside, reporting, epochs))
        return last[0]
    params = {**BUILTIN_PARAMS, "lr": lr}
    dataset = load_dataset("digits")  # cached per process, as our workers do
    model = build_model("mlp", dataset, params)
    config = TrainConfig.from_params(params, epochs=epochs)
    result = train_model(
        model, dataset, config, on_epoch=lambda m: report(m.epoch, m.val_accuracy, 0.0, 0.0)
    )
    done.append((trial.number, sum(m.seconds for m in result.history), 0.0, 0))
    if result.stopped_early:
        raise optuna.TrialPruned()
    return result.history[-1].val_accuracy


def _peer_main(url: str, setup: Setup, barrier: Any, results: Any, seed: int) -> None:
    """One peer process: load each kind's study, wait at the barrier (every process and
    the parent: start-up is over), then per kind wait at it again and optimize
    ``setup.trials`` trials."""
    import optuna

    import models  # noqa: F401  (start-up imports what our workers import)

    torch.set_num_threads(setup.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    sampler = optuna.samplers.RandomSampler(seed=seed)
    pruner = optuna.pruners.NopPruner()
    studies = {
        path: optuna.load_study(study_name=path, storage=storage, sampler=sampler, pruner=pruner)
        for path in PATHS
    }
    barrier.wait()
    for path, study in studies.items():
        barrier.wait()
        done: list[tuple] = []
        objective = functools.partial(_peer_objective, path=path, setup=setup, done=done)
        study.optimize(objective, n_trials=setup.trials)
        results.put((os.getpid(), done))


class Peer:
    """Optuna: ``setup.workers`` spawned processes on one SQLite-stored study per kind (a
    context manager: ``startup`` is set on entry); :meth:`run` runs one kind's study."""

    def __init__(self, setup: Setup) -> None:
        self.setup, self.startup = setup, 0.0
        self._tmp = tempfile.TemporaryDirectory(prefix="hpo-bench-peer-")
        self.url = f"sqlite:///{self._tmp.name}/optuna.db"
        ctx = mp.get_context("spawn")
        self._barrier = ctx.Barrier(setup.workers + 1, timeout=3600)
        self._results = ctx.Queue()
        args = (self.url, setup, self._barrier, self._results)
        self._procs = [
            ctx.Process(target=_peer_main, args=(*args, i)) for i in range(setup.workers)
        ]

    def __enter__(self) -> Peer:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        for path in PATHS:
            optuna.create_study(storage=self.url, study_name=path, direction="maximize")
        started = time.perf_counter()
        for proc in self._procs:
            proc.start()
        self._barrier.wait()  # every process has loaded the studies
        self.startup = time.perf_counter() - started
        return self

    def __exit__(self, *exc: object) -> None:
        self._barrier.abort()  # frees processes still waiting for a run that won't come
        for proc in self._procs:
            proc.join(30)
            if proc.is_alive():
                proc.terminate()
        self._tmp.cleanup()

    def run(self, path: str) -> Run:
        """Release the processes into ``path``'s study (runs must follow ``PATHS``)."""
        import optuna

        self._barrier.wait()
        rows = {}
        for _ in self._procs:
            pid, done = self._results.get(timeout=3600)
            rows |= {number: (f"pid-{pid}", *rest) for number, *rest in done}
        stored = optuna.load_study(study_name=path, storage=self.url).trials
        when = {t.number: (t.datetime_start, t.datetime_complete) for t in stored}
        return Run([TrialTime(w, *when[n], *rest) for n, (w, *rest) in rows.items()])
