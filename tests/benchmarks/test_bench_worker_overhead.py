"""The worker-overhead benchmark runs end to end in smoke mode and prints its tables: a
row per run (ours and the peer's, both kinds of trial), the ratios (or why the peer was
skipped), the start-up times and the data-set check. No timing assertions: measuring
is the benchmark's job, not a test's."""

from __future__ import annotations

import importlib.util
import math

from helpers.bench import run_benchmark

COLUMNS = ["trial_s", "span_s", "inside_s", "report_ms", "in_trial_ms", "between_ms"]
COLUMNS += ["overhead_%"]
KINDS = ["built-in", "entrypoint"]


def _table(lines: list[str], header: str) -> dict[str, list[float]]:
    """Rows of the table whose header line starts with ``header``, up to the next ``==``
    line: name (the first 18 characters) -> numbers ("-" is NaN)."""
    at = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[at + 1 :]:
        if line.startswith(("==", "peer skipped:")):
            break
        cells = line[18:].split()
        rows[line[:18].strip()] = [math.nan if c == "-" else float(c) for c in cells]
    return rows


def test_smoke_prints_the_worker_overhead_tables() -> None:
    out = run_benchmark("worker_overhead", "--smoke", timeout=400)
    lines = out.splitlines()
    assert lines[0].startswith("== worker overhead: 2 workers x 2 trials of 0.2 s")
    assert lines[1].split() == ["run", "trials", *COLUMNS]
    runs = _table(lines, "run ")
    peer_installed = importlib.util.find_spec("optuna") is not None
    sides = ["ours", "optuna"][: 1 + peer_installed]
    # Kind by kind, the sides one after the other (built-in first: fresh workers).
    expected = [f"{side} {kind}" for kind in KINDS for side in sides] + ["ours printing"]
    assert list(runs) == expected
    for name, (trials, trial_s, span, inside, report_ms, in_trial, between, share) in runs.items():
        assert trials == 4, name  # 2 workers x 2 trials, every one completed
        assert 0 < inside <= span and abs(trial_s - inside / trials) < 0.002
        # The span is the time inside plus the overhead in and between trials.
        assert abs(span - inside - trials * (in_trial + between) / 1000) < 0.01
        # span and inside are printed to 3 decimals (±0.0005 s each); the share
        # from them can be off by that much, carried through 100 * (1 - inside/span)
        slack = 100 * 0.0005 * (1 / span + inside / span**2) + 0.01
        assert abs(share - 100 * (1 - inside / span)) < slack
        assert math.isnan(report_ms) == name.endswith("built-in")
    # The printing trial against the same trial silent: both rows, the ratio of their
    # shares, and its log stored capped (1 MB printed in smoke mode, over a 1 MiB cap
    # it is not: kept whole).
    output = _table(lines, f"{'run':<18}{'overhead_%':>12}")
    assert list(output) == ["silent", "printing"]
    assert output["silent"][0] == runs["ours entrypoint"][-1]
    assert output["printing"][0] == runs["ours printing"][-1]
    assert output["silent"][3] == 0 and output["printing"][3] > 0
    ratio = next(line for line in lines if line.startswith("== output ratio printing/silent"))
    assert abs(float(ratio.split()[-1]) - output["printing"][0] / output["silent"][0]) < 0.01
    stored = next(line for line in lines if line.startswith("== output log as stored:"))
    printed, kept = (int(w.replace(",", "")) for w in stored.split() if w[0].isdigit())
    assert (printed, kept) == (1_000_000, 1_000_000)
    # An entrypoint trial trains until its 0.2 s are spent (time-based), never less.
    assert runs["ours entrypoint"][1] >= 0.2
    if peer_installed:
        ratios = _table(lines, "path ")
        assert list(ratios) == KINDS
        for path, (ours, peer, ratio) in ratios.items():
            assert ours == runs[f"ours {path}"][-1] and peer == runs[f"optuna {path}"][-1]
            assert abs(ratio - ours / peer) <= 0.01 * abs(ratio) + 1e-3
    else:
        assert any(line.startswith("peer skipped:") for line in lines)
    startups = _table(lines, "side ")
    assert list(startups) == sides
    assert all(cells[0] > 0 for cells in startups.values())
    # Data sets: loaded once for three trials in one process; two workers' rows.
    check = next(line for line in lines if line.startswith("== data sets:"))
    assert check.endswith("3 trials through worker.bridge here -> 1 load(s)")
    workers = _table(lines, "worker ")
    assert len(workers) == 2 and all(cells[0] == 2 for cells in workers.values())
