"""The search-quality benchmark runs end to end in smoke mode and prints a table row for
every method on every problem. No timing or quality assertions: that is the benchmark's
job, not a test's."""

from __future__ import annotations

import importlib.util

from helpers.bench import run_benchmark

from search import STRATEGIES


def test_smoke_prints_a_table_per_problem_with_every_method() -> None:
    out = run_benchmark("search_quality", "--smoke")
    tables = out.split("\n== ")[1:]
    assert [t.split(":", 1)[0] for t in tables] == ["branin", "hartmann6", "digits"]

    methods = {
        name for name in STRATEGIES if f"skipped {name}:" not in out
    }  # strategies that need options (multi-fidelity) are listed as skipped instead
    assert {"random", "grid", "evolution"} <= methods
    if importlib.util.find_spec("optuna") is not None:
        methods |= {"optuna-tpe", "optuna-random"}
    for table in tables:
        lines = table.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("method"))
        header = lines[at].split()
        assert header[1:3] == ["r@5", "r@10"]
        rows = {line.split()[0]: line.split() for line in lines[at + 1 :] if line.strip()}
        rows.pop("done", None)  # the last table is followed by the total time
        assert set(rows) == methods
        for cells in rows.values():
            assert len(cells) == len(header)
