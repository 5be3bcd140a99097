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
    assert set(STRATEGIES) == ours  # every strategy is timed, multi-fidelity ones too
    expected = ours | {"bayes (warm)", "skopt-gp"}
    if importlib.util.find_spec("optuna") is not None:
        expected.add("optuna-gp")
    assert set(rows) == expected
    assert rows["skopt-gp"][2:] == [1.0, 1.0]  # the reference of the ratio columns
    assert all(v >= 0 for cells in rows.values() for v in cells)


def test_multi_fidelity_strategies_are_timed_on_histories_they_made() -> None:
    """Hyperband and ASHA meet their own rungs and promotions, each size a prefix of
    one run (so N=50 is what the strategy saw after 50 trials)."""
    from benchmarks import suggest_latency

    for name in ("asha", "hyperband"):
        trials = suggest_latency.own_history(name, 40)
        assert len(trials) == 40
        assert any(isinstance(t.info.get("parent"), int) for t in trials)  # promotions
        assert {t.info["budget"] for t in trials} >= {1, 3}
        assert suggest_latency.own_history(name, 25) == trials[:25]
        assert all(t.status == "completed" and t.value is not None for t in trials)


def test_the_timed_prefix_ends_where_a_new_configuration_is_proposed() -> None:
    from benchmarks import suggest_latency

    for name, source in (("asha", "model"), ("hyperband", "model")):
        prefix = suggest_latency.costly_prefix(name, 40)
        assert 0 < len(prefix) <= 40
        following = suggest_latency.own_history(name, len(prefix) + 1)[len(prefix)]
        assert "parent" not in following.info
        assert following.info["source"] == source  # both default to the model sampler
