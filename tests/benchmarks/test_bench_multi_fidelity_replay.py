"""The replay benchmark runs at smoke size (so it cannot rot), its table of curves is
reused rather than retrained, and its replay of a strategy costs what training would:
figures are measured by running it at full size, never asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import multi_fidelity_replay as replay_bench
from benchmarks.multi_fidelity import Trainer


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
