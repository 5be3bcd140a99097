"""The fleet simulation runs end to end in smoke mode on real PostgreSQL and Redis
servers, FIFO then fair share, and prints its table. No assertions on the figures'
size (measuring is the benchmark's job): the structure, that trials ran under both
dispatches, and that every figure is a number in its range."""

from __future__ import annotations

import math

from helpers.bench import run_benchmark


def test_smoke_runs_fifo_then_fair_share_and_prints_every_figure() -> None:
    out = run_benchmark("fleet_sim", "--smoke", timeout=400)
    lines = out.splitlines()
    assert lines[0] == "== fleet simulation: 16 GPU slots in 3 pools, 7 studies, 24 s per dispatch"
    assert lines[1].split()[:3] == ["dispatch", "trials", "fairness"]
    rows = [line.split() for line in lines[2:4]]
    assert [r[0] for r in rows] == ["fifo", "fair"]
    for row in rows:
        trials, fairness = int(row[1]), float(row[2])
        idle = float(row[3].rstrip("%"))
        first_p50, first_p99, lease_p99, server_ms = (float(row[i]) for i in (4, 5, 7, 8))
        assert trials > 20
        assert 1 / 7 <= fairness <= 1.0 and 0.0 <= idle <= 100.0
        assert 0.0 <= first_p50 <= first_p99 and math.isfinite(first_p99)
        assert lease_p99 > 0 and server_ms > 0
    assert any(line.startswith("fair / fifo: fairness ") for line in lines)
