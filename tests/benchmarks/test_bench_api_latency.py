"""The API-latency benchmark runs end to end in smoke mode on a throw-away PostgreSQL and
prints its tables: p50/p99 per API call with the target check, the peer's calls and the
ratios (or why the peer was skipped). No timing assertions: measuring is the
benchmark's job, not a test's."""

from __future__ import annotations

import importlib.util

from helpers.bench import run_benchmark

OURS = [
    "trials page",
    "trials page by value",
    "trials page by value desc",
    "trials page by value, cursor",
    "study summary",
    "report",
    "report (median rule)",
]
PEER = ["get_trials (all)", "get_trials + sort by value", "best_trial", "report"]
PEER += ["report + should_prune"]


def _table(lines: list[str], header: list[str], names: list[str]) -> dict[str, list[str]]:
    """Rows of the table whose header line's words are ``header``: name -> cells."""
    at = next(i for i, line in enumerate(lines) if line.split() == header)
    rows = {line[:28].strip(): line[28:].split() for line in lines[at + 1 : at + 1 + len(names)]}
    assert list(rows) == names
    return rows


def test_smoke_prints_the_api_latency_tables() -> None:
    out = run_benchmark("api_latency", "--smoke")
    lines = out.splitlines()
    assert lines[0].startswith("== api latency: 2000 trials, ")
    assert "PostgreSQL" in lines[0] and "30 request(s) per call" in lines[0]
    ours = _table(lines, ["call", "p50_ms", "p99_ms", "n", "target", "p99<50ms"], OURS)
    for p50, p99, n, verdict in ours.values():
        assert 0 < float(p50) <= float(p99)
        assert int(n) == 30
        assert verdict == ("met" if float(p99) < 50 else "MISSED")
    met = sum(cells[3] == "met" for cells in ours.values())
    assert f"target p99 < 50 ms: met by {met} of {len(OURS)} calls" in lines
    assert any(line.startswith("first median-rule report after start-up") for line in lines)
    assert any(line.startswith("median rule answered stop to ") for line in lines)
    assert any(line.startswith("full GC collections while ours were timed: ") for line in lines)
    if importlib.util.find_spec("optuna") is None:
        assert any(line.startswith("peer skipped:") for line in lines)
        return
    assert any(line.startswith("== peer: optuna") for line in lines)
    peer = _table(lines, ["call", "p50_ms", "p99_ms", "n"], PEER)
    for p50, p99, n in peer.values():
        assert 0 < float(p50) <= float(p99) and 1 <= int(n) <= 30
    ratios = _table(lines, ["call", "ours_ms", "peer_ms", "ratio", "peer", "call"], OURS)
    for name, (ours_ms, peer_ms, ratio, *peer_call) in ratios.items():
        assert float(ours_ms) == float(ours[name][1])
        assert " ".join(peer_call) in PEER
        assert float(peer_ms) == float(peer[" ".join(peer_call)][1])
        assert abs(float(ratio) - float(ours_ms) / float(peer_ms)) <= 0.01 * float(ratio) + 1e-4
