"""The dashboard-load benchmark runs end to end in smoke mode and prints its tables: a
row per request of the study page, the peer's figures and the ratios (or why the peer
was skipped). No timing assertions: measuring is the benchmark's job, not a test's."""

from __future__ import annotations

import importlib.util

from helpers.bench import run_benchmark

REQUESTS = ["study", "history", "curves", "importance", "trials", "importance (cached)", "page"]
FIGURES = [
    "optimization_history",
    "intermediate_values",
    "parallel_coordinate",
    "slice",
    "param_importances",
    "page",
]


def _table(lines: list[str], header: str, names: list[str]) -> dict[str, list[float]]:
    """Rows of the table whose header line starts with ``header``: name -> numbers."""
    at = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[at + 1 : at + 1 + len(names)]:
        name = line[:22].strip()
        rows[name] = [float(cell) for cell in line[22:].split() if cell != "-"]
    assert list(rows) == names
    return rows


def test_smoke_prints_the_dashboard_load_tables() -> None:
    out = run_benchmark("dashboard_load", "--smoke")
    lines = out.splitlines()
    assert lines[0].startswith("== dashboard load: 300 trials x 5 reports")
    assert lines[1].split() == ["request", "median_ms", "max_ms", "bytes"]
    ours = _table(lines, "request", REQUESTS)
    assert all(len(cells) == 3 for name, cells in ours.items() if name != "importance (cached)")
    assert all(v >= 0 for cells in ours.values() for v in cells)
    # Every response has a body; the page's bytes are the sum of its requests'.
    assert all(ours[name][2] > 0 for name in REQUESTS[:5])
    assert ours["page"][2] == sum(ours[name][2] for name in REQUESTS[:5])
    peer_installed = all(importlib.util.find_spec(m) for m in ("optuna", "plotly"))
    if not peer_installed:
        assert any(line.startswith("peer skipped:") for line in lines)
        return
    assert any(line.startswith("== peer: optuna") for line in lines)
    peer = _table(lines, "figure", FIGURES)
    assert all(len(cells) == 3 and cells[2] > 0 for cells in peer.values())
    ratios = _table(lines, "chart", ["history", "curves", "importance", "page"])
    for ours_ms, peer_ms, ratio in ratios.values():
        assert ours_ms > 0 and peer_ms > 0
        assert abs(ratio - ours_ms / peer_ms) <= 0.05 * ratio + 1e-3  # ms are rounded
