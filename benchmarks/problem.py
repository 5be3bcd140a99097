"""A benchmark problem: a search space, an objective to minimize and what normalizing
its regret needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from search import SearchSpace

__all__ = ["Objective", "Problem"]

Objective = Callable[[Mapping[str, Any]], "float | None"]


@dataclass(frozen=True)
class Problem:
    """A minimization problem: ``objective(params)`` for params of ``space``.

    ``optimum`` is the known global minimum, or None when unknown (the benchmark then
    uses the best value it has seen). ``reference_draws`` is how many random points
    estimate the "typical random value" that regret is normalized by.
    """

    name: str
    space: SearchSpace
    objective: Objective
    optimum: float | None
    reference_draws: int
    description: str
    #: "tune": looked at while developing the strategies; "holdout": kept out of that,
    #: looked at only for the figures of a finished change.
    suite: str = "tune"
