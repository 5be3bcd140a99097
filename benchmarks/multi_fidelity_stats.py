"""Figures the multi-fidelity benchmarks derive from their runs: the least a
successive-halving ladder spends before its first full-budget result, and how far a
ratio of medians may move with other draws. Pure computation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from search.fidelity import budget_ladder

__all__ = ["first_full_cost", "ratio_interval"]


def first_full_cost(min_budget: int, max_budget: int, eta: int) -> int:
    """Epochs Hyperband's most aggressive bracket, or ASHA, spends before its first
    full-budget result: ``eta**(k - i)`` trials reach rung ``i`` of the ``k + 1``-rung
    ladder, each paying the epochs past the rung below (checkpoints resume). A match
    costs no less unless a lower rung's value already reaches random's best."""
    ladder = budget_ladder(min_budget, max_budget, eta)
    below = [0, *ladder]
    top = len(ladder) - 1
    return sum(eta ** (top - i) * (b - below[i]) for i, b in enumerate(ladder))


def ratio_interval(
    method: Sequence[int], random: Sequence[int], rounds: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """The 5th and 95th percentiles of the ratio of medians ``method / random`` over
    ``rounds`` bootstrap resamples of the draws (a draw keeps its pair: both methods
    faced the same target). Where a method matches after one bracket or another, its
    epochs are lumpy and the median jumps between brackets: the interval says how far
    a printed ratio may be from the same replay with other draws."""
    pairs = np.array([method, random], dtype=float)
    picks = np.random.default_rng(seed).integers(len(method), size=(rounds, len(method)))
    medians = np.median(pairs[:, picks], axis=2)
    ratios = medians[0] / medians[1]
    low, high = np.percentile(ratios, [5, 95])
    return float(low), float(high)
