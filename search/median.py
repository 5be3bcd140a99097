"""The median stopping rule, usable with any strategy through the per-epoch report
decision (as in Google Vizier and Optuna's MedianPruner).

A running trial is stopped at step ``s`` when its best value so far is worse than the
median of the best values, up to the same step, of earlier trials that reached step
``s``. It never stops a trial before ``warmup_steps`` or while fewer than ``min_trials``
peers reached the step, so the first trials always run to the end. Pure computation.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from search.status import Decision, Direction
from search.stopping import StoppingRule, int_option

__all__ = ["MedianRule"]

#: Upper bound of both options (a larger warm-up or peer count never stops anything).
MAX_OPTION = 100_000


class MedianRule(StoppingRule):
    """Stop a trial whose best value by ``step`` is strictly worse than the median of its
    peers' (``statistics.median``). Options: ``warmup_steps`` (default 2: steps 0 and 1
    are never stopped) and ``min_trials`` (default 5: peers needed at the step).

    NaN peer values are left out (they have no place in an order, and would make the
    median depend on the peers' order); infinite ones count as very bad or very good.
    """

    name = "median"

    @classmethod
    def validate_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        given = cls._check_option_keys(options, ("warmup_steps", "min_trials"))
        return {
            "warmup_steps": int_option(given, "warmup_steps", 2, 0, MAX_OPTION),
            "min_trials": int_option(given, "min_trials", 5, 1, MAX_OPTION),
        }

    @property
    def warmup_steps(self) -> int:
        return int(self.options["warmup_steps"])

    def _peers(self, peer_bests: Sequence[float]) -> list[float]:
        return [v for v in peer_bests if v == v]  # v != v only for NaN

    def decide(
        self,
        step: int,
        best_so_far: float,
        peer_bests: Sequence[float],
        direction: Direction,
    ) -> Decision:
        peers = self._peers(peer_bests)
        if step < self.warmup_steps or len(peers) < self.options["min_trials"]:
            return "continue"
        median = statistics.median(peers)
        worse = best_so_far < median if direction == "maximize" else best_so_far > median
        return "stop" if worse else "continue"

    def reason(
        self,
        step: int,
        best_so_far: float,
        peer_bests: Sequence[float],
        direction: Direction,
    ) -> str:
        return (
            f"median stopping: best {best_so_far:.4g} by step {step} is worse than the "
            f"median of {len(self._peers(peer_bests))} earlier trials"
        )
