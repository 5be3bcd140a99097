"""Worker-overhead benchmark: the share of a worker's wall time spent outside the training
function at 2-second trials, ours (the embedded service's local workers) against Optuna
(as many processes on one SQLite RDBStorage), in the same run.

    python -m benchmarks.worker_overhead [--workers 2] [--trials 20] [--seconds 2.0]
        [--epochs N] [--print-mb 10] [--smoke]

Two kinds of trial, ``--trials`` per worker each, random search, torch at cores/workers
threads: ``entrypoint`` (the study's ``train.entrypoint`` is :func:`train`, a
time-based torch loop: see :func:`busy_trial`) and ``built-in`` (``models/``' MLP on
digits through ``worker.bridge``, a checkpoint and a report per epoch; ``--epochs``, else
sized for ``--seconds`` from epochs timed here; ``trial_s`` is what a trial took).
Inside = the function's own time outside ``report`` (entrypoint: the last report's
metrics) or the epoch loop's (built-in: the ``seconds`` metric of each report).

Ours: one ``EmbeddedService`` (SQLite in a temporary folder, default settings), a study
per kind, ``max_parallel = --workers``. Start-up (spawn, imports, until every worker has
registered: ``list_workers``) is printed apart. Worker wall time (``span``) = per worker,
from its first trial's ``started_at`` to its last one's ``finished_at``, summed; it is
inside + ``in_trial_ms`` (per trial: duration minus inside: set-up, reports, finish) +
``between_ms`` (per trial: waiting for the next: scheduling, queueing, fetching).
``report_ms``: one report call. Overhead = 1 - inside / span.

Output (``--print-mb``, ours only): the entrypoint trial again, printing that many MB
(100-byte lines, a share at each epoch's end, timed as overhead), against the same
trial printing nothing: what capturing, shipping and capping a flood of output costs.

Peer (when optuna is installed): ``--workers`` spawned processes, each ``load_study``
(RandomSampler, NopPruner) and ``optimize(n_trials=--trials)`` with the same trials,
``trial.report`` + ``should_prune`` per epoch (built-in: ``models.train`` on the
per-process cached data set, no checkpoints), measured alike (``datetime_start``/
``datetime_complete`` per process). Ratio: ours / peer (below 1: ours wastes less); the
sides run kind by kind, one right after the other, as the machine's other load makes
absolute numbers noisy. Data sets load once per worker process: three trials through
``worker.bridge.run_training`` here count the loader's calls, and each built-in worker's
first trial (which loads them) is shown against its later ones.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.worker_overhead_common import (
    BUILTIN_PARAMS,
    EPOCHS,
    PATHS,
    SPACE,
    Run,
    Setup,
    TrialTime,
    busy_trial,
    train,
)
from benchmarks.worker_overhead_peer import Peer

__all__ = ["BUILTIN_PARAMS", "EPOCHS", "Run", "TrialTime", "busy_trial", "main", "train"]


def calibrate(seconds: float, threads: int) -> tuple[int, int, int]:
    """Built-in epochs for a ``seconds`` trial, from three 2-epoch trials run through
    ``worker.bridge.run_training`` here; returns (epochs, trials run, data set loads)."""
    from hpo.schemas import TrialSpec
    from models import datasets
    from worker.bridge import run_training

    loads, loader = 0, datasets.DATASETS["digits"]

    def counting(**kwargs: Any) -> datasets.Dataset:
        nonlocal loads
        loads += 1
        return loader(**kwargs)

    torch.set_num_threads(threads)
    datasets.clear_dataset_cache()
    datasets.DATASETS["digits"] = counting
    epoch_s: list[float] = []
    try:
        for number in range(3):
            spec = TrialSpec.model_validate(
                dict(trial_id=number, study="calibrate", number=number, attempt=1, epochs=2)
                | dict(seed=number, heartbeat_interval=10, timeout=60, objective={})
                | {"params": {**BUILTIN_PARAMS, "lr": 1e-3}, "train": {"dataset": "digits"}}
            )
            epoch_s.append(run_training(spec, lambda m, saved: False).history[-1].seconds)
    finally:
        datasets.DATASETS["digits"] = loader
        datasets.clear_dataset_cache()
    return max(2, round(seconds / statistics.median(epoch_s))), 3, loads


def _spec(path: str, setup: Setup, print_mb: float = 0.0) -> dict[str, Any]:
    if path in ("entrypoint", "printing"):
        entrypoint = f"{train.__module__}:{train.__name__}"
        fixed = {"seconds": setup.seconds, "print_mb": print_mb if path == "printing" else 0}
        train_spec = {"entrypoint": entrypoint, "params": fixed}
        space, metric = SPACE, "score"
    else:
        train_spec = {"model": "mlp", "dataset": "digits", "params": BUILTIN_PARAMS}
        space, metric = {"lr": SPACE["lr"]}, "val_accuracy"
    budget = {"max_trials": setup.workers * setup.trials, "max_parallel": setup.workers}
    epochs = setup.epochs["entrypoint" if path == "printing" else path]
    return {
        "name": path,
        "objective": {"metric": metric, "direction": "maximize"},
        "space": space,
        "strategy": {"name": "random", "seed": 7},
        "budget": {**budget, "epochs": epochs},
        "train": train_spec,
    }


def _ours_trial(path: str, trial: Any) -> TrialTime:
    """A stored trial (``TrialDetail``) as timings; raises unless it completed."""
    if trial.status != "completed" or not trial.reports:
        raise RuntimeError(f"{path} trial {trial.number} ended {trial.status}: {trial.error}")
    when = dict(worker=trial.worker or "?", start=trial.started_at, end=trial.finished_at)
    if path == "built-in":
        return TrialTime(**when, inside=sum(float(r.metrics["seconds"]) for r in trial.reports))
    # (printing: its print time is in ``reporting``, so it counts as overhead)
    last, n = trial.reports[-1].metrics, len(trial.reports) - 1
    return TrialTime(**when, inside=last["inside"], reporting=last["reporting"], reports=n)


class Ours:
    """One embedded service with ``setup.workers`` local worker processes (a context
    manager: ``startup`` is set on entry); :meth:`run` runs one study of a kind."""

    def __init__(self, setup: Setup) -> None:
        self.setup, self.startup = setup, 0.0
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Ours:
        from hpo.client import Client
        from hpo.embedded import EmbeddedService
        from hpo.settings import Settings

        tmp = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="hpo-bench-"))
        # Worker processes read HPO_* from the environment they are spawned with. What
        # trials print goes to their logs only, not on to this program's output.
        os.environ["HPO_DATA_DIR"] = tmp
        os.environ["HPO_LOG_TEE"] = "false"
        settings = Settings(data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/hpo.db")
        started = time.perf_counter()
        settings = settings.model_copy(update={"redis_url": None})
        service = EmbeddedService(settings, workers=self.setup.workers)
        try:
            self.api = self._stack.enter_context(Client(self._stack.enter_context(service).url))
            while sum(w.status != "stopped" for w in self.api.list_workers()) < service.workers:
                if time.perf_counter() - started > 600:
                    raise RuntimeError("the local workers did not register in 600 s")
                time.sleep(0.05)
        except BaseException:
            self._stack.close()
            raise
        self.startup = time.perf_counter() - started
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def run(self, path: str, print_mb: float = 0.0) -> Run:
        self.api.create_study(_spec(path, self.setup, print_mb))
        while self.api.get_study(path).status == "running":
            time.sleep(0.5)
        trials = [self.api.get_trial(path, t.number) for t in self.api.all_trials(path)]
        return Run([_ours_trial(path, t) for t in trials])

    def printing(self) -> tuple[float, int, int]:
        """Of the printing run: seconds the trials spent printing (median per trial),
        and the first trial's log as stored (bytes printed, bytes kept)."""
        trials = [self.api.get_trial("printing", t.number) for t in self.api.all_trials("printing")]
        spent = statistics.median(float(t.reports[-1].metrics["printing"]) for t in trials)
        log = self.api.trial_log("printing", trials[0].number)
        if os.environ.get("HPO_BENCH_DUMP_LOG"):
            Path(os.environ["HPO_BENCH_DUMP_LOG"]).write_text(log.text)
        return spent, log.size, log.size - log.cut_bytes


def _cell(value: float, digits: int = 3) -> str:
    return f"{'-':>12}" if math.isnan(value) else f"{value:>12.{digits}f}"


def report(
    setup: Setup,
    runs: dict[str, Run],
    startups: dict[str, float],
    loads: tuple[int, int],
    skipped: str | None,
    printing: tuple[float, float, int, int] | None = None,
) -> None:
    """Print the tables (the smoke test reads their structure)."""
    print(
        f"== worker overhead: {setup.workers} workers x {setup.trials} trials of "
        f"{setup.seconds:g} s, entrypoint {setup.epochs['entrypoint']} reports, built-in "
        f"{setup.epochs['built-in']} epochs, SQLite"
    )
    columns = ("trial_s", "span_s", "inside_s", "report_ms", "in_trial_ms", "between_ms")
    columns += ("overhead_%",)
    print(f"{'run':<18}{'trials':>7}" + "".join(f"{c:>12}" for c in columns))
    for key, run in runs.items():
        s = run.summary()
        print(f"{key:<18}{s['trials']:>7d}" + "".join(_cell(s[c]) for c in columns))
    if skipped:
        print(f"peer skipped: {skipped}")
    else:
        print("== ratio ours/peer (overhead share; below 1: ours wastes less)")
        print(f"{'path':<18}{'ours_%':>12}{'peer_%':>12}{'ratio':>12}")
        for path in PATHS:
            ours = runs[f"ours {path}"].summary()["overhead_%"]
            peer = runs[f"optuna {path}"].summary()["overhead_%"]
            print(f"{path:<18}{ours:>12.3f}{peer:>12.3f}{ours / peer:>12.3f}")
    if printing is not None:
        print_mb, spent, size, kept = printing
        quiet, loud = runs["ours entrypoint"].summary(), runs["ours printing"].summary()
        print(
            f"== output: the entrypoint trial printing {print_mb:g} MB (captured, shipped, "
            "capped) against the same trial printing nothing (ours)"
        )
        print(f"{'run':<18}{'overhead_%':>12}{'in_trial_ms':>12}{'report_ms':>12}{'print_s':>12}")
        for key, s in (("silent", quiet), ("printing", loud)):
            shown = spent if key == "printing" else 0.0
            print(
                f"{key:<18}{s['overhead_%']:>12.3f}{s['in_trial_ms']:>12.1f}"
                f"{s['report_ms']:>12.2f}{shown:>12.3f}"
            )
        ratio = loud["overhead_%"] / quiet["overhead_%"]
        print(f"== output ratio printing/silent (overhead share): {ratio:.3f}")
        print(f"== output printing: {1000 * spent / print_mb:.1f} ms per MB inside the trial")
        print(f"== output log as stored: {size:,} bytes printed, {kept:,} kept (head and tail)")
    print("== start-up: spawn and imports until every worker is ready (not in the spans)")
    print(f"{'side':<18}{'startup_s':>12}")
    for side, seconds in startups.items():
        print(f"{side:<18}{seconds:>12.3f}")
    print(f"== data sets: {loads[0]} trials through worker.bridge here -> {loads[1]} load(s)")
    print("   in-trial overhead per worker of the built-in run: first trial vs later ones")
    print(f"{'worker':<18}{'trials':>7}{'first_ms':>12}{'later_ms':>12}")
    for worker, rows in runs["ours built-in"].per_worker().items():
        later = statistics.median(t.in_trial for t in rows[1:]) if len(rows) > 1 else math.nan
        first = 1000 * rows[0].in_trial
        print(f"{worker[-18:]:<18}{len(rows):>7d}{_cell(first, 1)}{_cell(1000 * later, 1)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--trials", type=int, default=20, help="trials per worker")
    parser.add_argument("--seconds", type=float, default=2.0, help="training per trial")
    parser.add_argument("--epochs", type=int, help="built-in epochs (default: calibrated)")
    parser.add_argument(
        "--print-mb", type=float, default=10.0, help="output of the printing trial (0: no run)"
    )
    parser.add_argument("--smoke", action="store_true", help="2 trials per worker of 0.2 s")
    args = parser.parse_args(argv)
    if args.smoke:
        args.trials, args.seconds, args.print_mb = 2, 0.2, min(args.print_mb, 1.0)
    if args.workers < 1 or args.trials < 1 or args.seconds <= 0 or (args.epochs or 1) < 1:
        parser.error("--workers, --trials and --epochs >= 1, --seconds > 0")
    setup = Setup(args.workers, args.trials, args.seconds, {"entrypoint": EPOCHS})
    epochs, *loads = calibrate(args.seconds, setup.threads)
    setup.epochs["built-in"] = args.epochs or epochs
    skipped = None if importlib.util.find_spec("optuna") else "optuna not installed"
    runs: dict[str, Run] = {}
    with contextlib.ExitStack() as stack:
        sides = {"ours": stack.enter_context(Ours(setup))}
        if not skipped:
            sides["optuna"] = stack.enter_context(Peer(setup))
        # Kinds in turn, each side right after the other: the machine's other load
        # changes slowly, so the two sides of a ratio see about the same.
        for path in PATHS:
            for side, runner in sides.items():
                print(f"({side} {path}...)", file=sys.stderr)
                runs[f"{side} {path}"] = runner.run(path)
        printed = None
        if args.print_mb > 0:
            print("(ours printing...)", file=sys.stderr)
            ours = sides["ours"]
            assert isinstance(ours, Ours)
            runs["ours printing"] = ours.run("printing", args.print_mb)
            printed = (args.print_mb, *ours.printing())
    startups = {side: runner.startup for side, runner in sides.items()}
    report(setup, runs, startups, (loads[0], loads[1]), skipped, printed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
