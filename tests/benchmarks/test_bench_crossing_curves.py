"""The crossing-curve benchmark at smoke size prints every family and method; its
tasks really cross (figures are measured at full size, never asserted here)."""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np

from benchmarks import crossing_curves as cc


def test_smoke_prints_every_family_and_method() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cc.main(["--smoke"]) == 0
    text = out.getvalue()
    for family in cc.FAMILIES:
        assert f"-- {family}: epochs / random's" in text
    for method in cc.METHODS:
        assert text.count(f"\n{method:<18} median") == len(cc.FAMILIES)


def test_smoke_runs_every_syne_tune_peer_beside_ours() -> None:
    """The peers need syne_tune, which the dev install has: without it their rows are
    missing and this fails (it is never skipped)."""
    out = io.StringIO()
    methods = ",".join(("asha", *cc.PEERS))
    with contextlib.redirect_stdout(out):
        assert cc.main(["--smoke", "--families", "exp,noisy", "--methods", methods]) == 0
    for method in ("asha", *cc.PEERS):
        rows = re.findall(
            rf"^{re.escape(method)} +median +(\d+\.\d+|inf)  never ([01])/1 ", out.getvalue(), re.M
        )
        assert len(rows) == 2, (method, out.getvalue())


def test_fast_starters_finish_behind_and_a_resume_is_exact() -> None:
    rng = np.random.default_rng(1)
    points = [cc.SPACE.sample(rng) for _ in range(200)]
    for family in ("exp", "overfit"):
        task = cc.make_task(family, 3)
        first = np.array([task.value(p, 1) for p in points])
        final = np.array([task.value(p, 27) for p in points])
        # the leaders after one epoch are not the leaders at the end
        leaders = np.argsort(-first)[:10]
        assert np.median(final[leaders]) < np.quantile(final, 0.75)
    trainer = cc.CurveTrainer(cc.make_task("noisy", 0))
    whole = trainer.run(points[0], 9, None, 0)
    first_part = trainer.run(points[0], 3, None, 0)
    resumed = trainer.run(points[0], 9, first_part[1], 0)
    assert resumed[0] == whole[0] and resumed[2] == 6 and first_part[2] == 3
