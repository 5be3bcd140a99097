"""The import-time benchmark runs end to end in smoke mode and prints its table with a
row per measurement and the ratio to optuna. No timing assertions: measuring is the
benchmark's job, not a test's (tests/hpo/test_light_imports.py asserts what is loaded)."""

from __future__ import annotations

import importlib.util

from helpers.bench import run_benchmark


def test_smoke_prints_the_import_time_table() -> None:
    out = run_benchmark("import_time", "--smoke")
    assert "== import time" in out and "median of 2" in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("row"))
    assert lines[at].split() == ["row", "seconds", "x", "optuna", "heavy"]
    rows = {}
    for line in lines[at + 1 :]:
        if line.startswith("x optuna"):
            break
        name, cells = line[: line.index("  ")].strip(), line.split()[-3:]
        rows[name] = cells
    expected = {"python", "import hpo", "from hpo import Client", "Client()", "hpo --help"}
    peer = importlib.util.find_spec("optuna") is not None
    if peer:
        expected.add("import optuna")
    assert set(rows) == expected
    for seconds, ratio, _ in rows.values():
        assert float(seconds) > 0
        assert (float(ratio) > 0) if peer else ratio == "-"
    if peer:
        assert rows["import optuna"][1] == "1.00"  # the reference of the ratio column
    for name in expected - {"import optuna"}:
        assert rows[name][2] == "-", (name, rows[name])  # no heavy module in the client
