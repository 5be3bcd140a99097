"""The Syne Tune peers: installed in the dev install (a missing syne_tune fails here, it
is never skipped), driven one epoch at a time, paused trials resumed from their
checkpoint, every trained epoch counted once, and trials credited by the value they
pause or stop with, as our methods and the Optuna peer are."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from benchmarks import syne_peers
from benchmarks.multi_fidelity import SPACES
from search import SearchSpace


class RecordingCurves:
    """A trainer (``benchmarks.multi_fidelity.Trainer.run``'s contract) whose value after
    epoch ``e`` is ``curve[e - 1]`` plus a small per-configuration offset; it records
    every call as (budget, epoch its checkpoint holds)."""

    def __init__(self, curve: list[float]) -> None:
        self.curve = curve
        self.calls: list[tuple[int, int]] = []

    def seed_for(self, seed: int, number: int) -> int:
        return seed

    def run(
        self, params: Mapping[str, Any], budget: int, start: Any, seed: int
    ) -> tuple[float | None, Any, int]:
        done = 0 if start is None else int(start[1])
        self.calls.append((budget, done))
        offset = 1e-3 * float(np.log10(params["lr"]))  # configurations differ a little
        return self.curve[budget - 1] + offset, ("state", budget), budget - done


def test_syne_tune_is_part_of_the_dev_install() -> None:
    assert syne_peers.available(), "install syne-tune (make's dev install: SYNE_TUNE_SPEC)"


@pytest.mark.parametrize("label", syne_peers.PEERS)
def test_each_epoch_is_trained_once_and_paused_trials_resume(label: str) -> None:
    space = SearchSpace.from_dict(SPACES["mlp"])
    trainer = RecordingCurves([0.5 + 0.01 * e for e in range(9)])
    outcome = syne_peers.run_syne(label, trainer, space, 0, 2.0, 100, 9, 3)  # never met
    assert outcome.epochs_to_match is None
    # one epoch per call, each from the checkpoint of the epoch before
    assert all(budget == done + 1 for budget, done in trainer.calls)
    assert outcome.epochs_spent == len(trainer.calls) == 100  # the cap ends the run
    # promotions resume: some calls start past epoch 1 from a trial that paused there
    assert outcome.resume_saved > 0 and outcome.promoted_budget > outcome.resume_saved
    assert max(budget for budget, _ in trainer.calls) == 9


@pytest.mark.parametrize("label", syne_peers.PEERS)
def test_a_trial_counts_with_the_value_it_pauses_or_stops_with(label: str) -> None:
    """A peak passed between rungs 1 and 3 and lost by rung 3 is not a match (unless the
    cap ends the run right there, which ends that trial: the Optuna peer's rule); a
    value at a rung is, with the epochs spent by then."""
    space = SearchSpace.from_dict(SPACES["mlp"])
    peak = RecordingCurves([0.5, 0.99, 0.6])
    passed = syne_peers.run_syne(label, peak, space, 0, 0.9, 60, 3, 3)
    assert passed.epochs_to_match is None or passed.epochs_to_match == passed.epochs_spent == 60
    assert passed.epochs_to_match is None or peak.calls[-1][0] == 2
    rising = RecordingCurves([0.5, 0.6, 0.95])
    matched = syne_peers.run_syne(label, rising, space, 0, 0.9, 60, 3, 3)
    assert matched.epochs_to_match == matched.epochs_spent == len(rising.calls)
    assert rising.calls[-1][0] == 3


def test_the_config_space_is_ours_and_trials_train_their_active_parameters() -> None:
    from syne_tune.config_space import Categorical, Float, Integer

    space = SearchSpace.from_dict(SPACES["mlp-cnn"])
    translated = syne_peers.config_space(space)
    assert list(translated) == list(space.names)
    assert isinstance(translated["lr"], Float) and translated["lr"].lower == 1e-4
    assert isinstance(translated["units"], Integer) and translated["units"].upper == 256
    assert isinstance(translated["batch_size"], Categorical)
    rng = np.random.RandomState(0)
    for _ in range(20):
        config = {name: domain.sample(random_state=rng) for name, domain in translated.items()}
        assert space.contains(space.project(config))
