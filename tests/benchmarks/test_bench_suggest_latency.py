"""The suggest-latency benchmark runs end to end in smoke mode and prints its table with a
row per method. No timing assertions: measuring is the benchmark's job, not a test's."""

from __future__ import annotations

import importlib.util

from helpers.bench import run_benchmark

from search import STRATEGIES


def test_smoke_prints_the_latency_table() -> None:
    out = run_benchmark("suggest_latency", "--smoke", "--blas-threads", "1")
    assert "== suggest latency" in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("method"))
    assert lines[at].split() == ["method", "N=5", "N=12", "x@5", "x@12"]
    rows = {}
    for line in lines[at + 1 :]:
        if line.startswith("x@N"):
            break
        name, cells = line[: line.index("  ")].strip(), line.split()[-4:]
        rows[name] = [float(c) for c in cells]
    ours = {name for name in STRATEGIES if f"skipped {name}:" not in out}
    assert {"random", "grid", "bayes"} <= ours
    expected = ours | {"bayes (warm)", "skopt-gp"}
    if importlib.util.find_spec("optuna") is not None:
        expected.add("optuna-gp")
    assert set(rows) == expected
    assert rows["skopt-gp"][2:] == [1.0, 1.0]  # the reference of the ratio columns
    assert all(v >= 0 for cells in rows.values() for v in cells)
