"""The median stopping rule, usable with any strategy through the per-epoch report
decision (as in Google Vizier and Optuna's MedianPruner).

A running trial is stopped at step ``s`` when its best value so far is worse than the
median of the best values, up to the same step, of earlier trials that reached step
``s``. It never stops a trial before ``warmup_steps`` or while fewer than ``min_trials``
peers reached the step, so the first trials always run to the end. Pure computation.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from search.status import Decision, Direction

__all__ = ["median_decision"]


def median_decision(
    best_so_far: float,
    peer_bests: Sequence[float],
    step: int,
    direction: Direction,
    *,
    warmup_steps: int = 2,
    min_trials: int = 5,
) -> Decision:
    """``"stop"`` when ``best_so_far`` is worse than the median of ``peer_bests``.

    ``peer_bests`` holds, for each peer that reached ``step``, its best value over steps
    ``<= step``; ``best_so_far`` is the same quantity for the trial being decided.
    """
    if step < warmup_steps or len(peer_bests) < min_trials:
        return "continue"
    median = statistics.median(peer_bests)
    worse = best_so_far < median if direction == "maximize" else best_so_far > median
    return "stop" if worse else "continue"
