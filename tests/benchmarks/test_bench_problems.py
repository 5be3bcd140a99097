"""The search-quality problems: every one builds, its known minimum is reached where the
literature puts it and no random point beats it, and the suites split the problems."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import problems_synthetic as fns
from benchmarks.problems import PROBLEMS, make_problem, suite_problems


@pytest.mark.parametrize(
    ("fn", "point", "minimum"),
    [
        (fns.hartmann3, [0.114614, 0.555649, 0.852547], -3.86278),
        (fns.michalewicz, [2.202906, 1.570796, 1.284992, 1.923058, 1.720470], -4.687658),
        (fns.styblinski_tang, [-2.903534] * 10, -391.661657),
        (fns.six_hump_camel, [0.0898, -0.7126], -1.0316),
        (fns.levy, [1.0] * 8, 0.0),
        (fns.ackley, [0.0] * 5, 0.0),
        (fns.rastrigin, [0.0] * 6, 0.0),
        (fns.rosenbrock, [1.0] * 4, 0.0),
        (fns.rotated_ellipsoid, list(fns._rotation(20)[1]), 0.0),
    ],
)
def test_each_function_reaches_its_stated_minimum(fn, point, minimum) -> None:
    assert fn(np.array(point)) == pytest.approx(minimum, abs=1e-4)


@pytest.mark.parametrize("name", [p for p in PROBLEMS if p != "digits"])
def test_no_random_point_beats_a_known_optimum(name: str) -> None:
    problem = make_problem(name, smoke=True)
    rng = np.random.default_rng(7)
    draws = 300 if problem.optimum is not None else 3  # model tuning: a few fits
    values = [problem.objective(problem.space.sample(rng)) for _ in range(draws)]
    assert all(v is not None and math.isfinite(v) for v in values)
    if problem.optimum is not None:
        assert min(v for v in values if v is not None) >= problem.optimum - 1e-9


def test_the_suites_split_the_problems_and_the_holdout_spans_every_kind() -> None:
    tune, holdout = suite_problems("tune"), suite_problems("holdout")
    assert not set(tune) & set(holdout) and set(tune) | set(holdout) == set(PROBLEMS)
    assert suite_problems("all") == list(PROBLEMS)
    dims = [len(make_problem(p, smoke=True).space) for p in holdout]
    assert min(dims) == 2 and max(dims) == 20
    assert {"conditional", "mixed_ackley", "forest"} <= set(holdout)
    # the optimum of a mixed or conditional problem is reachable within its space
    conditional = make_problem("conditional")
    best = {"family": "valley", "lr": 10**-2.5, "valley_p": 1.0, "valley_q": 1.0}
    assert conditional.space.contains(best) and conditional.objective(best) == pytest.approx(0)
    mixed = make_problem("mixed_ackley")
    ones = {n: 1 for n in mixed.space.names if n != "variant"} | {"variant": "a"}
    assert mixed.space.contains(ones) and mixed.objective(ones) == pytest.approx(0, abs=1e-9)
