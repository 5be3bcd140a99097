"""ASHA: asynchronous successive halving (Li et al., 2018), for large fleets.

Rungs are budgets ``min_budget * eta**k`` up to ``max_budget`` (epochs). Whenever a worker
frees up, ``ask`` first looks for a promotion, from the top rung down: a completed trial
in the top ``1/eta`` of its rung (among the rung's completed trials so far) that has not
been promoted yet continues one rung higher, *from its checkpoint*; otherwise a new
configuration (the ``sampler`` option: model-based or random) starts at the bottom
rung. Nobody waits for a rung to fill.

A promotion is a new trial with the same parameters and ``info`` ``{"rung": k + 1,
"budget": ladder[k + 1], "parent": number}``: the server gives it the parent's checkpoint,
so it trains from the parent's budget up to its own. The study's ``max_trials`` counts
promotions too; the strategy never runs out.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from search.base import Suggestion, TrialRecord
from search.fidelity import MultiFidelityStrategy, budget_ladder, top_k

__all__ = ["AshaStrategy"]


class AshaStrategy(MultiFidelityStrategy):
    """Asynchronous successive halving over epochs, with checkpoint continuation."""

    name = "asha"

    def _setup(self) -> None:
        o = self.options
        self.ladder = budget_ladder(o["min_budget"], o["max_budget"], o["eta"])
        self._rng = np.random.default_rng([self.seed, len(self.history)])
        self._rungs: dict[int, list[TrialRecord]] = defaultdict(list)
        self._promoted: set[int] = set()
        for trial in self.history:
            rung = trial.info.get("rung") if trial.info else None
            if not isinstance(rung, int) or not 0 <= rung < len(self.ladder):
                continue  # not one of ours, or from a different ladder
            if not self.in_space(trial):
                continue
            self._rungs[rung].append(trial)
            parent = trial.info.get("parent")
            if isinstance(parent, int):
                self._promoted.add(parent)

    def _promotion(self) -> Suggestion | None:
        sign = -1.0 if self.direction == "maximize" else 1.0
        for rung in range(len(self.ladder) - 2, -1, -1):
            done = [t for t in self._rungs[rung] if t.status == "completed"]
            quota = int(len(done) // self.options["eta"])
            for candidate in top_k(done, quota, sign):
                if candidate.number not in self._promoted:
                    self._promoted.add(candidate.number)
                    info = {"rung": rung + 1, "budget": self.ladder[rung + 1]}
                    info["parent"] = candidate.number
                    return Suggestion(params=dict(candidate.params), info=info)
        return None

    def ask(self, n: int) -> list[Suggestion]:
        self._check_n(n)
        out: list[Suggestion] = []
        for _ in range(n):
            promoted = self._promotion()
            if promoted is not None:
                out.append(promoted)
            else:
                pending = [s.params for s in out if not s.info.get("parent")]
                params, source = self.new_params(self._rng, pending, self.ladder[0])
                info = {"rung": 0, "budget": self.ladder[0], "source": source}
                out.append(Suggestion(params=params, info=info))
        return out
