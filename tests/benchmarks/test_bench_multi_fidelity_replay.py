"""The replay benchmark runs at smoke size (so it cannot rot), its table of curves is
reused rather than retrained, and its replay of a strategy costs what training would:
figures are measured by running it at full size, never asserted here."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks import multi_fidelity_replay as replay_bench
from benchmarks.multi_fidelity import Trainer
from search import TrialRecord


def test_smoke_run_prints_every_method_and_reuses_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    curves = tmp_path / "curves.jsonl"
    assert replay_bench.main(["--smoke", "--curves", str(curves)]) == 0
    out = capsys.readouterr().out
    for method in replay_bench.METHODS:
        assert f" {method} " in out
    recorded = curves.read_text()
    assert len(recorded.splitlines()) == 6
    assert replay_bench.main(["--smoke", "--curves", str(curves)]) == 0
    assert curves.read_text() == recorded  # nothing trained again


def test_smoke_run_replays_the_syne_tune_peers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Named in --methods, each Syne Tune peer gets its cell (epochs, ratio, matched
    share); syne_tune is in the dev install, so a missing one fails here."""
    methods = ",".join(("asha", *replay_bench.EXTRA))
    args = ["--smoke", "--curves", str(tmp_path / "c.jsonl"), "--methods", methods]
    assert replay_bench.main(args) == 0
    out = capsys.readouterr().out
    for method in replay_bench.EXTRA:
        assert re.search(rf" {re.escape(method)} \d+ \(\d+\.\d\dx \[", out), (method, out)


def test_a_recorded_curve_is_what_resumed_training_scores(tmp_path: Path) -> None:
    """The replay's premise: training to budget b through checkpoints (1, then 3)
    scores what the straight run's curve holds at epoch b."""
    curves = replay_bench.record_curves("mlp", 2, 3, 5, tmp_path / "c.jsonl")
    trainer = Trainer()
    for index, curve in enumerate(curves):
        params = replay_bench.sample_params("mlp", 5, index)
        first, checkpoint, _ = trainer.run(params, 1, None, 5)
        third, _, _ = trainer.run(params, 3, checkpoint, 5)
        assert (first, third) == (curve[0], curve[2])


def test_replayed_strategies_pay_only_the_epochs_past_the_parent() -> None:
    """With every curve the same, asha spends its bottom rungs before reaching a full
    budget, and each promotion pays only the epochs past its parent's budget."""
    flat = [[0.5 + 0.01 * e for e in range(9)] for _ in range(4)]
    rows = replay_bench.replay(flat, 2, 1, 9, 3, methods=("random", "asha"))
    ((matched, counted),) = rows["asha"]
    # target = 0.58 (epoch 9): ladder 1, 3, 9 -> 9 bottom trials, 3 promotions to 3
    # (2 epochs each), 1 promotion to 9 (6 epochs): 9 + 6 + 6 = 21.
    assert matched == counted == 21
    assert rows["random"] == [(9, 9)]


def test_the_peer_is_credited_by_the_value_its_trials_end_with() -> None:
    """A peak passed mid-trial and lost by the trial's end is not a match (our
    strategies and random search are credited by a trial's final value too)."""
    pytest.importorskip("optuna")
    peak_then_drop = [[0.5, 0.99, 0.6]]
    assert replay_bench._peer(peak_then_drop, 0, 0.9, 30, 3, 3) is None
    rising = [[0.5, 0.6, 0.95]]
    assert replay_bench._peer(rising, 0, 0.9, 30, 3, 3) is not None


def test_a_proposal_snaps_to_the_nearest_untried_row() -> None:
    table = replay_bench.Table("mlp-cnn", 3, [[0.5]] * 40)
    for k in (0, 17, 39):
        assert table.nearest(table.params[k], set()) == k
    moved = table.nearest(table.params[17], {17})
    assert moved != 17
    # The runner-up is the nearest row once the exact one is tried.
    features = table._features
    distance = ((features - features[17]) ** 2).sum(axis=1)
    distance[17] = float("inf")
    assert moved == int(distance.argmin())
    assert table.nearest(table.params[5], set(range(40))) == 5  # all tried: any row


def test_the_model_sampler_proposes_untried_rows_of_the_table() -> None:
    """With enough results the bayes sampler's proposals are table rows no trial holds
    yet; the random third draws rows as the random sampler does."""
    curves = [[0.1 + 0.8 * k / 60] * 3 for k in range(60)]
    table = replay_bench.Table("mlp", 0, curves)
    cls = replay_bench._pooled("asha", table)
    history = [
        TrialRecord(n, table.params[n], "completed", curves[n][0], info={"rung": 0, "budget": 1})
        for n in range(20)
    ]
    options = {"max_budget": 3, "eta": 3, "sampler": "bayes"}
    sources = []
    for seed in range(12):
        strategy = cls(table.space, history, direction="maximize", seed=seed, options=options)
        rng = np.random.default_rng(seed)
        params, source = strategy.new_params(rng, [], 1)
        row = table.row(params)
        sources.append(source)
        if source == "model":
            assert row >= 20  # never one tried already
    assert "model" in sources and "random" in sources


def test_draws_in_other_processes_give_the_same_figures() -> None:
    rng = np.random.default_rng(4)
    curves = [sorted(rng.uniform(0.2, 0.9, size=9).tolist()) for _ in range(30)]
    methods = ("random", "hyperband", "asha")
    alone = replay_bench.replay(curves, 4, 6, 9, 3, methods=methods)
    pooled = replay_bench.replay(curves, 4, 6, 9, 3, methods=methods, jobs=2)
    assert pooled == alone
    assert len(alone["asha"]) == 6


def test_the_oracle_ranks_by_final_accuracy_but_is_credited_as_trained() -> None:
    """Two configurations that swap places after epoch 1: plain asha promotes the one
    ahead at epoch 1, the oracle the one ahead at the end; both are charged and
    credited by what their trials actually scored."""
    early, late = [0.9, 0.91, 0.92], [0.1, 0.5, 0.99]
    table = replay_bench.Table("mlp", 0, [early, late, early])
    options = {"max_budget": 3, "eta": 3, "sampler": "random"}
    history = [
        TrialRecord(
            n, table.params[n], "completed", table.curves[n][0], info={"rung": 0, "budget": 1}
        )
        for n in range(3)
    ]
    chosen = {}
    for oracle in (False, True):
        cls = replay_bench._pooled("asha", table, oracle)
        strategy = cls(table.space, history, direction="maximize", seed=0, options=options)
        (suggestion,) = strategy.ask(1)
        chosen[oracle] = table.row(suggestion.params)
        assert [t.value for t in history] == [0.9, 0.1, 0.9]  # the caller's records kept
    assert table.curves[chosen[False]] is early
    assert chosen[True] == 1
    # Replayed: plain asha never promotes the late bloomer (behind at epoch 1), so it
    # misses a target of 0.99; the oracle matches every draw, and never later.
    methods = ("random", "asha", "asha(oracle)")
    rows = replay_bench.replay([early, late], 2, 30, 3, 3, methods=methods)
    assert None in [matched for matched, _ in rows["asha"]]
    for (plain, _), (oracle, _) in zip(rows["asha"], rows["asha(oracle)"], strict=True):
        assert oracle is not None
        assert plain is None or oracle <= plain
