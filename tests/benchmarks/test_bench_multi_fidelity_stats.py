"""The multi-fidelity benchmarks' derived figures, checked against hand-computed ones."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.multi_fidelity_stats import first_full_cost, ratio_interval


def test_the_floor_is_the_cost_of_the_first_full_budget_result() -> None:
    # Ladder 1, 3, 9, 27: 27 x 1 + 9 x 2 + 3 x 6 + 1 x 18.
    assert first_full_cost(1, 27, 3) == 81
    # Ladder 1, 2, 4, 8: 8 x 1 + 4 x 1 + 2 x 2 + 1 x 4.
    assert first_full_cost(1, 8, 2) == 20
    assert first_full_cost(5, 5, 3) == 5  # one rung: a full trial
    # The replay's flat-table charge test: asha's 21 epochs are this floor.
    assert first_full_cost(1, 9, 3) == 21


def test_the_ratio_interval_brackets_the_printed_ratio() -> None:
    rng = np.random.default_rng(2)
    random = rng.integers(1, 30, size=80).tolist()
    assert ratio_interval(random, random) == (1.0, 1.0)
    halved = [r / 2 for r in random]
    assert ratio_interval(halved, random) == pytest.approx((0.5, 0.5))
    # Lumpy epochs (a match after one bracket or the next): the point ratio lies inside
    # an interval of real width, and the same seed gives the same interval.
    lumpy = rng.choice([81, 159, 249], size=80).tolist()
    low, high = ratio_interval(lumpy, random)
    point = float(np.median(lumpy) / np.median(random))
    assert low <= point <= high
    assert high - low > 0.05
    assert ratio_interval(lumpy, random) == (low, high)
