"""The GP over configuration x budget that proposes new configurations for the
multi-fidelity strategies' ``bayes`` sampler."""

from __future__ import annotations

import statistics

from search import SearchSpace
from search.fidelity_model import propose_at_target

SPACE = SearchSpace.from_dict({"x": {"type": "float", "low": 0.0, "high": 1.0}})
GRID = SearchSpace.from_dict({"k": {"type": "int", "low": 0, "high": 4}})


def _value(x: float, budget: int) -> float:
    """A fast starter at x = 0.15 leads after 1 epoch; x = 0.85 wins after full training."""
    if budget == 1:
        return 1.0 - abs(x - 0.15)
    return 2.0 - abs(x - 0.85)


def _observed() -> list[tuple[dict, int, float]]:
    low = [({"x": i / 19}, 1, _value(i / 19, 1)) for i in range(20)]
    high = [({"x": x}, 27, _value(x, 27)) for x in (0.1, 0.15, 0.5, 0.7)]
    return low + high


def _propose(observed, in_flight=(), seed=0):
    return propose_at_target(
        SPACE,
        observed,
        list(in_flight),
        direction="maximize",
        seed=seed,
        min_budget=1,
        max_budget=27,
        min_observations=3,
    )


def test_proposals_follow_the_largest_budget_not_the_cheapest() -> None:
    """Twenty 1-epoch results point to x = 0.15; four full-budget ones show larger x
    doing better there. The model is asked at the full budget, so it proposes large x
    (a model of the 1-epoch rung alone would stay near 0.15)."""
    xs = [_propose(_observed(), seed=s)["x"] for s in range(8)]
    assert statistics.median(xs) > 0.6, xs


def test_waits_for_enough_results_and_for_a_budget_seen_twice() -> None:
    two = _observed()[:2]
    assert _propose(two) is None  # fewer than min_observations
    spread = [({"x": 0.1}, 1, 0.9), ({"x": 0.5}, 3, 0.8), ({"x": 0.9}, 9, 0.7)]
    assert _propose(spread) is None  # no budget holds two results yet


def test_is_a_function_of_its_inputs() -> None:
    assert _propose(_observed(), seed=4) == _propose(_observed(), seed=4)


def test_never_repeats_a_configuration_tried_or_in_flight() -> None:
    observed = [({"k": k}, b, float(k + b)) for k in (0, 1) for b in (1, 9)]
    in_flight = [{"k": 2}, {"k": 3}]
    for seed in range(5):
        out = propose_at_target(
            GRID,
            observed,
            in_flight,
            direction="maximize",
            seed=seed,
            min_budget=1,
            max_budget=9,
            min_observations=3,
        )
        assert out == {"k": 4}


def test_a_one_rung_ladder_models_that_budget() -> None:
    observed = [({"x": x}, 5, -abs(x - 0.3)) for x in (0.0, 0.2, 0.6, 0.9, 1.0)]
    out = propose_at_target(
        SPACE,
        observed,
        [],
        direction="maximize",
        seed=1,
        min_budget=5,
        max_budget=5,
        min_observations=3,
    )
    assert out is not None and set(out) == {"x"}
