"""A model of configuration x budget for the multi-fidelity strategies' new
configurations: one GP over the search space plus the budget (log-scaled epochs).

Why one model over every rung: a model of one budget alone either sees the cheapest
rung only (plenty of results, but a 1-epoch ranking favours fast starters that are not
the best after full training) or a higher rung only (few results, and in ASHA only
configurations already promoted). With the budget as an input, the GP learns from every
result of every rung how results at a low budget relate to those at a high one, the same
configuration seen at several budgets included, and it is asked at the *target* budget:
the largest budget with at least two results (the full budget once promotions reach it).

Everything in flight (trials queued or running, configurations suggested in this ask)
is told as a constant lie at the target budget, so parallel asks spread out, and no
configuration already tried at any budget is proposed again while fresh candidates
remain. Pure: the answer is a function of the records, the budgets and the seed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from search.base import TrialRecord
from search.bayes import BayesStrategy
from search.params import FloatParam
from search.space import SearchSpace
from search.status import Direction

__all__ = ["propose_at_target"]

#: Candidates per proposal (the single-budget model used the same).
N_CANDIDATES = 500


class _AtBudget(BayesStrategy):
    """Bayesian optimization over (configuration, budget) whose candidates all sit at
    one budget (``target``): the model uses every fidelity, the proposal is for one."""

    def __init__(self, *args: Any, budget_name: str, target: float, **kwargs: Any) -> None:
        self.budget_name = budget_name
        self.target = target
        super().__init__(*args, **kwargs)

    def _setup(self) -> None:
        super()._setup()
        # A configuration tried at any budget counts as seen at the target too.
        self._seen = {self._encoder.key(self._at(t.params)) for t in self.history}

    def _at(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, self.budget_name: self.target}

    def _decode(self, rows: np.ndarray) -> list[dict[str, Any]]:
        return [self._at(p) for p in super()._decode(rows)]

    def _features(self, rows: np.ndarray) -> np.ndarray:
        x = super()._features(rows)
        x[:, self._budget_columns] = self._budget_feature
        return x

    @functools.cached_property
    def _budget_columns(self) -> slice:
        return self._encoder.columns_of(self.budget_name)

    @functools.cached_property
    def _budget_feature(self) -> np.ndarray:
        """The budget's feature columns at the target (every candidate's)."""
        point = self._decode(np.full((1, self._encoder.n_dims), 0.5))[0]
        return self._encoder.features([point])[0, self._budget_columns]


def propose_at_target(
    space: SearchSpace,
    observed: Sequence[tuple[Mapping[str, Any], int, float]],
    in_flight: Sequence[Mapping[str, Any]],
    *,
    direction: Direction,
    seed: int,
    min_budget: int,
    max_budget: int,
    min_observations: int,
) -> dict[str, Any] | None:
    """A new configuration from a GP over (configuration, budget), or None while there
    are fewer than ``min_observations`` results or no budget holds two of them.

    ``observed`` holds ``(params, budget, value)`` per completed trial (every rung);
    ``in_flight`` the configurations queued, running or suggested but not yet done.
    """
    if len(observed) < min_observations:
        return None
    name = "__budget__"
    while name in space:
        name += "_"
    # A one-rung ladder (min == max) still needs a valid range; its budget feature is
    # then constant and the model is that of the one budget.
    top = max(max_budget, min_budget + 1)
    joint = SearchSpace([*space.params, FloatParam(name, min_budget, top, log=True)])
    counts: dict[int, int] = {}
    for _, budget, _ in observed:
        counts[budget] = counts.get(budget, 0) + 1
    well_known = [b for b, c in counts.items() if c >= 2]
    if not well_known:
        return None
    target = float(max(well_known))
    records = [
        TrialRecord(i, {**params, name: float(budget)}, "completed", value)
        for i, (params, budget, value) in enumerate(observed)
    ]
    records += [
        TrialRecord(len(records) + i, {**params, name: target}, "running")
        for i, params in enumerate(in_flight)
    ]
    model = _AtBudget(
        joint,
        records,
        direction=direction,
        seed=seed,
        # Constant lies for the configurations in flight: the multi-fidelity figures
        # in the README (crossing curves, replay) were measured with them.
        options={"n_initial_points": 1, "n_candidates": N_CANDIDATES, "liar": "mean"},
        budget_name=name,
        target=target,
    )
    params = model.ask(1)[0].params
    params.pop(name, None)
    return params
