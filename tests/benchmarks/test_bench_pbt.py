"""The PBT benchmark at smoke size: every method, Ray Tune's PBT included, on the same
tasks and epochs; and the task it runs on, whose curves cross (figures are measured by
running it at full size, never asserted here)."""

from __future__ import annotations

import argparse
import contextlib
import io

import numpy as np

from benchmarks import pbt
from benchmarks.schedule_task import DIVERGED, make_task


def test_smoke_prints_every_method_with_pbts_ratio() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert pbt.main(["--smoke"]) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("== pbt: noisy quadratic, 4 x 8 epochs per method")
    summary = lines[lines.index(next(x for x in lines if x.startswith("method "))) + 1 :]
    rows = {line.split()[0]: line.split()[1:] for line in summary}
    assert set(rows) == {*pbt.METHODS, "best-const"}, lines
    for method in pbt.METHODS:
        loss, epochs = float(rows[method][0]), float(rows[method][1])
        assert 0 < loss < DIVERGED and 0 < epochs <= 4 * 8 + 8  # one trial may overshoot
    assert rows["pbt"][2] == "1"


def test_every_method_of_ours_spends_about_the_same_epochs() -> None:
    args = argparse.Namespace(population=4, epochs=8, interval=2, workers=2)
    for method in ("pbt", "asha", "random"):
        loss, spent = pbt.run_ours(method, 3, args)
        assert np.isfinite(loss) and spent <= 4 * 8 + 8, method
    assert pbt.run_ours("pbt", 3, args) == pbt.run_ours("pbt", 3, args)


def test_the_task_rewards_a_schedule_over_any_constant() -> None:
    """High learning rates lead early and lose late: the curves cross, and dropping the
    rate after a fast start beats the best constant configuration."""
    task = make_task(0)
    fast, slow = {"lr": 1.0, "batch_size": 8}, {"lr": 0.2, "batch_size": 8}
    a, b = task.initial(), task.initial()
    early = None
    for epoch in range(1, 41):
        a, b = task.epoch(a, fast), task.epoch(b, slow)
        if epoch == 3:
            early = task.loss(a) < task.loss(b)
    assert early and task.loss(a) > task.loss(b)
    state = task.initial()
    for epoch in range(40):
        lr = 1.0 if epoch < 24 else 0.1 if epoch < 34 else 0.01
        state = task.epoch(state, {"lr": lr, "batch_size": 8})
    assert task.loss(state) < pbt.best_constant(0, 40)
    diverged = task.initial()
    for _ in range(3):
        diverged = task.epoch(diverged, {"lr": 2.5, "batch_size": 8})
    assert task.loss(diverged) == DIVERGED
