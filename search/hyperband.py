"""Hyperband (Li et al., 2017): successive halving run over several brackets that trade
the number of configurations against the budget each one starts with.

With ``R = max_budget``, ``r = min_budget`` and ``s_max = floor(log_eta(R / r))``, bracket
``s`` (from ``s_max`` down to 0) starts ``n = ceil((s_max + 1) / (s + 1) * eta**s)``
new configurations (random, or model-based: the ``sampler`` option) at budget
``R * eta**-s``; each rung keeps the best ``1/eta`` and continues them at ``eta`` times
the budget, up to ``R``. Brackets repeat in that order (Hyperband iterations) until the
study's ``max_trials`` is spent.

In a service with many workers, a bracket that waits for its rung to finish does not
idle the fleet: ``ask`` then starts the next bracket. Promotions continue from the
checkpoint of the lower rung (``info["parent"]``), as in ASHA. Trial info:
``{"bracket": b, "rung": i, "budget": epochs, "parent": number}``.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from search.base import Suggestion, TrialRecord
from search.fidelity import MultiFidelityStrategy, top_k
from search.status import TERMINAL

__all__ = ["HyperbandStrategy", "bracket_plan"]


def bracket_plan(s: int, s_max: int, max_budget: int, eta: float) -> list[tuple[int, int]]:
    """(configurations, budget) of each rung of bracket ``s``; budgets strictly rise and
    the last one is ``max_budget``."""
    n0 = math.ceil((s_max + 1) / (s + 1) * eta**s)
    plan: list[tuple[int, int]] = []
    for i in range(s + 1):
        n_i = max(1, int(n0 * eta ** (-i)))
        budget = max(1, round(max_budget * eta ** (i - s)))
        if i == s:
            budget = max_budget
        if plan and budget <= plan[-1][1]:
            budget = plan[-1][1] + 1 if i < s else max_budget
        plan.append((n_i, budget))
    return plan


class HyperbandStrategy(MultiFidelityStrategy):
    """Hyperband over epochs, brackets run concurrently when the fleet allows."""

    name = "hyperband"
    # Model-based by default (BOHB): where learning curves cross, plain Hyperband's
    # random configurations matched random search's best in 7, 3, 3 and 6 of 10 seeds
    # of benchmarks.crossing_curves' four families within 2x its epochs, the model fed
    # by every rung in 10 of 10 of each (the README's Benchmarks section).
    default_sampler = "bayes"
    # Brackets start configurations at up to the full budget: the model learns from
    # every rung (see MultiFidelityStrategy.new_params).
    model_fidelity = "all"

    def _setup(self) -> None:
        o = self.options
        eta, r_max, r_min = o["eta"], o["max_budget"], o["min_budget"]
        self.s_max = math.floor(math.log(r_max / r_min, eta) + 1e-9)
        self.plans = [
            bracket_plan(self.s_max - p, self.s_max, r_max, eta) for p in range(self.s_max + 1)
        ]
        self._rng = np.random.default_rng([self.seed, len(self.history)])
        # bracket -> rung -> trials
        self._trials: dict[int, dict[int, list[TrialRecord]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._promoted: set[int] = set()
        self._pending: list[dict] = []  # new configurations of this instance's asks
        for trial in self.history:
            info = trial.info or {}
            bracket, rung = info.get("bracket"), info.get("rung")
            if not (isinstance(bracket, int) and isinstance(rung, int) and bracket >= 0):
                continue
            if rung >= len(self._plan(bracket)) or not self.in_space(trial):
                continue
            self._trials[bracket][rung].append(trial)
            if isinstance(info.get("parent"), int):
                self._promoted.add(info["parent"])

    def _plan(self, bracket: int) -> list[tuple[int, int]]:
        return self.plans[bracket % len(self.plans)]

    def _target(self, bracket: int, rung: int) -> int:
        """How many trials rung ``rung`` of ``bracket`` gets (fewer than planned when
        the rung below had failures)."""
        planned = self._plan(bracket)[rung][0]
        if rung == 0:
            return planned
        below = self._trials[bracket][rung - 1]
        done = sum(t.status == "completed" for t in below)
        return min(planned, done)

    def _rung_finished(self, bracket: int, rung: int) -> bool:
        trials = self._trials[bracket][rung]
        return len(trials) >= self._target(bracket, rung) and all(
            t.status in TERMINAL for t in trials
        )

    def _next_in(self, bracket: int) -> Suggestion | None:
        plan = self._plan(bracket)
        rungs = self._trials[bracket]
        if len(rungs[0]) < plan[0][0]:
            params, source = self.new_params(self._rng, self._pending, plan[0][1])
            self._pending.append(params)
            info = {"bracket": bracket, "rung": 0, "budget": plan[0][1], "source": source}
            suggestion = Suggestion(params=params, info=info)
            rungs[0].append(TrialRecord(number=-1, params=params, status="queued"))
            return suggestion
        sign = -1.0 if self.direction == "maximize" else 1.0
        for rung in range(len(plan) - 1):
            if not self._rung_finished(bracket, rung):
                return None  # successive halving is synchronous within a bracket
            if len(rungs[rung + 1]) >= self._target(bracket, rung + 1):
                continue
            done = [t for t in rungs[rung] if t.status == "completed"]
            for best in top_k(done, plan[rung + 1][0], sign):
                if best.number in self._promoted:
                    continue
                self._promoted.add(best.number)
                info = {"bracket": bracket, "rung": rung + 1, "budget": plan[rung + 1][1]}
                info["parent"] = best.number
                rungs[rung + 1].append(TrialRecord(number=-1, params=best.params, status="queued"))
                return Suggestion(params=dict(best.params), info=info)
            return None
        return None

    def ask(self, n: int) -> list[Suggestion]:
        self._check_n(n)
        out: list[Suggestion] = []
        bracket = 0
        while len(out) < n:
            suggestion = self._next_in(bracket)
            if suggestion is None:
                bracket += 1  # this bracket waits on its rung: work on the next one
                continue
            out.append(suggestion)
        return out
