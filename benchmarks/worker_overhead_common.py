"""What both sides of the worker-overhead benchmark (``benchmarks.worker_overhead``)
share: the trial (:func:`busy_trial`, the entrypoint :func:`train`), the run's setup and
the timings read back from each side's storage."""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "BUILTIN_PARAMS",
    "EPOCHS",
    "PATHS",
    "SPACE",
    "Run",
    "Setup",
    "TrialTime",
    "busy_trial",
    "train",
]

#: Reports per entrypoint trial (one per epoch).
EPOCHS = 4
SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    "units": {"type": "int", "low": 32, "high": 128},
}
#: The built-in trial: a fixed architecture (only ``lr`` is searched), ~0.5 s an epoch.
BUILTIN_PARAMS: dict[str, Any] = {"hidden_layers": 3, "units": 512, "batch_size": 16}
#: Built-in first: its first trials show what a fresh worker process pays once.
PATHS = ("built-in", "entrypoint")


def busy_trial(
    params: dict[str, Any], seconds: float, epochs: int, report: Callable[..., bool]
) -> tuple[float, float]:
    """Train a small MLP by SGD for ``epochs`` epochs, ``seconds`` in all, *time-based*:
    each epoch trains until its share of ``seconds`` is spent, so every trial trains
    equally long however busy the machine is. After each epoch it calls ``report(epoch,
    score, inside, reporting)`` (True: stop): ``inside`` is the time spent in this
    function so far (set-up included) outside ``report``, ``reporting`` the time spent
    in the earlier ``report`` calls. Returns the final (inside, reporting)."""
    entered = time.perf_counter()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 64, generator=generator)
    y = torch.randint(0, 10, (256,), generator=generator)
    units = int(params["units"])
    model = nn.Sequential(nn.Linear(64, units), nn.ReLU(), nn.Linear(units, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=float(params["lr"]))
    inside, reporting, mark = 0.0, 0.0, entered
    for epoch in range(1, epochs + 1):
        loss = torch.zeros(())
        while inside + time.perf_counter() - mark < seconds * epoch / epochs:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        score = 1.0 / (1.0 + loss.item())
        inside += time.perf_counter() - mark
        mark = time.perf_counter()
        stop = report(epoch, score, inside, reporting)
        reporting += time.perf_counter() - mark
        mark = time.perf_counter()
        if stop:
            break
    return inside + time.perf_counter() - mark, reporting


#: One line of the printing trial's output (100 bytes).
LINE = "step {:>12d} " + "x" * 81 + "\n"


def train(params: dict[str, Any], reporter: Any) -> None:
    """The study's ``train.entrypoint``: :func:`busy_trial` for ``params["seconds"]``;
    with ``params["print_mb"]`` it also prints that many MB of output, a share at each
    epoch's end, in the time it calls reporting (so it counts as overhead: the
    training itself is as long as without it)."""
    lines = int(float(params.get("print_mb", 0)) * 1e6) // len(LINE.format(0))
    per_epoch = lines // reporter.epochs if lines else 0
    printing = 0.0

    def report(step: int, score: float, inside: float, reporting: float) -> bool:
        nonlocal printing
        if per_epoch:
            mark = time.perf_counter()
            write = sys.stdout.write
            for n in range(per_epoch):
                write(LINE.format(n))
            sys.stdout.flush()
            printing += time.perf_counter() - mark
        metrics = dict(score=score, inside=inside, reporting=reporting, printing=printing)
        return bool(reporter.report(step, **metrics))

    busy_trial(params, float(params["seconds"]), reporter.epochs, report)


@dataclass(frozen=True)
class Setup:
    """What every run shares: worker processes, trials per worker, seconds of training
    per trial, epochs (reports) per trial of each path."""

    workers: int
    trials: int
    seconds: float
    epochs: dict[str, int]

    @property
    def threads(self) -> int:
        """Torch threads per process: the cores split between workers, as ours do."""
        return max(1, len(os.sched_getaffinity(0)) // self.workers)


@dataclass(frozen=True)
class TrialTime:
    """One trial as its storage recorded it: who ran it, when, the seconds it spent
    inside training and, for entrypoint trials, in its first ``reports`` report calls."""

    worker: str
    start: datetime
    end: datetime
    inside: float
    reporting: float = 0.0
    reports: int = 0

    @property
    def in_trial(self) -> float:
        """Seconds of the trial outside training (set-up, reports, finish)."""
        return (self.end - self.start).total_seconds() - self.inside


@dataclass
class Run:
    """One path's trials."""

    trials: list[TrialTime]

    def per_worker(self) -> dict[str, list[TrialTime]]:
        """Each worker's trials in start order."""
        out: dict[str, list[TrialTime]] = {}
        for trial in sorted(self.trials, key=lambda t: t.start):
            out.setdefault(trial.worker, []).append(trial)
        return out

    def summary(self) -> dict[str, float]:
        """trials, trial_s, span_s, inside_s, report_ms, in_trial_ms, between_ms (per
        trial) and overhead_% (of the span)."""
        span = gaps = 0.0
        for rows in self.per_worker().values():
            span += (rows[-1].end - rows[0].start).total_seconds()
            gaps += sum((b.start - a.end).total_seconds() for a, b in itertools.pairwise(rows))
        n, inside = len(self.trials), sum(t.inside for t in self.trials)
        calls = sum(t.reports for t in self.trials)
        reporting = sum(t.reporting for t in self.trials)
        return {
            "trials": n,
            "trial_s": inside / n,
            "span_s": span,
            "inside_s": inside,
            "report_ms": 1000 * reporting / calls if calls else math.nan,
            "in_trial_ms": 1000 * (span - gaps - inside) / n,
            "between_ms": 1000 * gaps / n,
            "overhead_%": 100 * (1 - inside / span),
        }
