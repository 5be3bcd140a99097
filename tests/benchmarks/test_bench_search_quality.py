"""The search-quality benchmark runs end to end in smoke mode and prints a table row for
every method on every problem. No timing or quality assertions: that is the benchmark's
job, not a test's."""

from __future__ import annotations

import importlib.util

from helpers.bench import run_benchmark

from benchmarks.search_quality import SMOKE_PROBLEMS, scoreboard
from search import STRATEGIES


def test_smoke_prints_a_table_per_problem_with_every_method() -> None:
    out = run_benchmark("search_quality", "--smoke")
    tables = out.split("\n== ")[1:]
    assert [t.split(":", 1)[0] for t in tables] == list(SMOKE_PROBLEMS)

    peers = set()
    if importlib.util.find_spec("optuna") is not None:
        peers = {"optuna-gp", "optuna-tpe", "optuna-random"}
        assert "bayes <= optuna-gp at 12: " in out
    for table in tables:
        # strategies that need options (multi-fidelity), or that cannot cover the space
        # (grid over floats without a step), are listed as skipped instead
        methods = {name for name in STRATEGIES if f"skipped {name}:" not in table} | peers
        assert {"random", "evolution", "bayes"} <= methods
        lines = table.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("method"))
        header = lines[at].split()
        assert header[1:3] == ["r@5", "r@12"]
        rows = {
            line.split()[0]: line.split()
            for line in lines[at + 1 :]
            if line.strip() and not line.startswith("bayes <=")
        }
        rows.pop("done", None)  # the last table is followed by the total time
        assert set(rows) == methods
        for cells in rows.values():
            assert len(cells) == len(header)


def test_the_scoreboard_counts_ties_as_at_least_as_good_and_names_the_losses() -> None:
    medians = {
        "a": {"bayes": [0.2, 0.1], "gp": [0.3, 0.1]},
        "b": {"bayes": [0.5, 0.0], "gp": [0.4, 0.0]},
        "c": {"gp": [0.1, 0.1]},  # bayes did not run: not counted
    }
    assert scoreboard(medians, [50, 100], "bayes", "gp") == [
        "bayes <= gp at 50: 1 of 2 problems (worse on b)",
        "bayes <= gp at 100: 2 of 2 problems",
    ]
