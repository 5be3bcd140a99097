"""The bookkeeping benchmark at smoke size: ours (embedded and fleet) and Ray Tune, each
row with its wall time over the ideal."""

from __future__ import annotations

import contextlib
import io

from benchmarks.bookkeeping import main


def test_smoke_prints_ours_and_ray_tunes_wall_over_the_ideal() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--smoke"]) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("== bookkeeping: 12 trials of 0.5 s on 2 slots, ideal 3.0 s")
    rows = {
        line[:15].strip(): line[15:].split()
        for line in lines
        if line.startswith(("ours", "Ray")) and " / " not in line
    }
    assert set(rows) >= {"ours (embedded)", "ours (fleet)", "Ray Tune"}, lines
    for label in ("ours (embedded)", "ours (fleet)", "Ray Tune"):
        wall, over = float(rows[label][0]), float(rows[label][1].rstrip("x"))
        # never faster than the trials themselves; the ratio is the wall over 3.0 s
        assert wall >= 3.0 and abs(over - wall / 3.0) < 0.01
    for label in ("ours (embedded)", "ours (fleet)"):
        in_trial, between = float(rows[label][3]), float(rows[label][4])
        assert in_trial >= 0 and between > -1.0
    assert any(line.startswith("ours (fleet) / Ray Tune: wall") for line in lines)
