"""ASHA: asynchronous successive halving (Li et al., 2018), for large fleets, with
optional brackets (asynchronous Hyperband, Li et al., 2020).

Rungs are budgets ``min_budget * eta**k`` up to ``max_budget`` (epochs). Bracket ``b``
starts its configurations at rung ``b`` and climbs the rungs above it; with one bracket
(``brackets: 1``) that is plain ASHA, every configuration starting at the bottom rung.
Whenever a worker frees up, ``ask`` first looks for a promotion, from the top rung down:
a completed trial in the top ``1/eta`` of its bracket's rung (among that rung's completed
trials so far) that has not been promoted yet continues one rung higher, *from its
checkpoint*; otherwise a new configuration (the ``sampler`` option: model-based or
random) starts in the bracket furthest below its share. Shares follow Hyperband's
bracket sizes (``ceil((s_max + 1) / (s + 1) * eta**s)`` configurations for the bracket
starting ``s`` rungs below the top), so each bracket spends about the same epochs.
Nobody waits for a rung to fill.

Why brackets: where learning curves cross (fast starters finish behind, as high
learning rates do), a rung's early leaders are the wrong ones to promote. Configurations
started at higher rungs are judged at budgets where the ranking holds, and with more
than one bracket the model-based sampler learns from every rung (a GP over
configuration x budget, asked at the largest budget with results: ``model_fidelity``
"all"), so it stops chasing fast starters. The default (``default_brackets``) is
measured in the README.

A promotion is a new trial with the same parameters and ``info`` ``{"bracket": b,
"rung": k + 1, "budget": ladder[k + 1], "parent": number}``: the server gives it the
parent's checkpoint, so it trains from the parent's budget up to its own. The study's
``max_trials`` counts promotions too; the strategy never runs out. A trial without a
``bracket`` (from before brackets) counts in bracket 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np

from search.base import Suggestion, TrialRecord
from search.errors import OptionError
from search.fidelity import (
    FIDELITY_OPTIONS,
    MultiFidelityStrategy,
    budget_ladder,
    check_fidelity_options,
    top_k,
)

__all__ = ["AshaStrategy", "default_brackets"]


def default_brackets(sampler: str, rungs: int) -> int:
    """Brackets unless the study names a number: one per rung with the model-based
    sampler, which needs results at high budgets to learn that fast starters finish
    behind; one (plain ASHA) with the random sampler, which has no model to feed and
    spends least that way where low rungs rank well (the README has the figures)."""
    return rungs if sampler == "bayes" else 1


class AshaStrategy(MultiFidelityStrategy):
    """Asynchronous successive halving over epochs, with checkpoint continuation."""

    name = "asha"

    @classmethod
    def validate_options(cls, options: Any) -> dict[str, Any]:
        """The fidelity options (``MultiFidelityStrategy``) and ``brackets`` (int >= 1,
        default :func:`default_brackets`; more than the rungs means one per rung)."""
        given = cls._check_option_keys(options, (*FIDELITY_OPTIONS, "brackets"))
        brackets = given.pop("brackets", None)
        out = check_fidelity_options(given, cls.default_sampler)
        if brackets is None:
            rungs = len(budget_ladder(out["min_budget"], out["max_budget"], out["eta"]))
            brackets = default_brackets(out["sampler"], rungs)
        if isinstance(brackets, bool) or not isinstance(brackets, int) or brackets < 1:
            raise OptionError("options.brackets", f"must be an integer >= 1, got {brackets!r}")
        return {**out, "brackets": brackets}

    def _setup(self) -> None:
        o = self.options
        self.ladder = budget_ladder(o["min_budget"], o["max_budget"], o["eta"])
        self.brackets = min(o["brackets"], len(self.ladder))
        if self.brackets > 1:
            self.model_fidelity = "all"
        self._rng = np.random.default_rng([self.seed, len(self.history)])
        self._rungs: dict[tuple[int, int], list[TrialRecord]] = defaultdict(list)
        self._promoted: set[int] = set()
        self._started = [0] * self.brackets  # new configurations per bracket
        for trial in self.history:
            info: Mapping[str, Any] = trial.info or {}
            rung, bracket = info.get("rung"), info.get("bracket", 0)
            if not isinstance(rung, int) or not 0 <= rung < len(self.ladder):
                continue  # not one of ours, or from a different ladder
            if not isinstance(bracket, int) or not 0 <= bracket < self.brackets:
                continue
            if rung < bracket or not self.in_space(trial):
                continue
            self._rungs[bracket, rung].append(trial)
            parent = info.get("parent")
            if isinstance(parent, int):
                self._promoted.add(parent)
            elif rung == bracket:
                self._started[bracket] += 1

    def _shares(self) -> list[float]:
        """Each bracket's share of new configurations (Hyperband's bracket sizes)."""
        s_max, eta = len(self.ladder) - 1, self.options["eta"]
        sizes = [
            math.ceil((s_max + 1) / (s_max - b + 1) * eta ** (s_max - b))
            for b in range(self.brackets)
        ]
        return [size / sum(sizes) for size in sizes]

    def _next_bracket(self) -> int:
        """The bracket furthest below its share of new configurations (lowest first)."""
        total = sum(self._started) + 1
        deficits = [
            share * total - n for share, n in zip(self._shares(), self._started, strict=True)
        ]
        return int(np.argmax(deficits))

    def _promotion(self) -> Suggestion | None:
        sign = -1.0 if self.direction == "maximize" else 1.0
        for rung in range(len(self.ladder) - 2, -1, -1):
            for bracket in range(min(rung, self.brackets - 1) + 1):
                done = [t for t in self._rungs[bracket, rung] if t.status == "completed"]
                quota = int(len(done) // self.options["eta"])
                for candidate in top_k(done, quota, sign):
                    if candidate.number not in self._promoted:
                        self._promoted.add(candidate.number)
                        info = {"bracket": bracket, "rung": rung + 1}
                        info |= {"budget": self.ladder[rung + 1], "parent": candidate.number}
                        return Suggestion(params=dict(candidate.params), info=info)
        return None

    def ask(self, n: int) -> list[Suggestion]:
        self._check_n(n)
        out: list[Suggestion] = []
        for _ in range(n):
            promoted = self._promotion()
            if promoted is not None:
                out.append(promoted)
                continue
            bracket = self._next_bracket()
            self._started[bracket] += 1
            pending = [s.params for s in out if not s.info.get("parent")]
            budget = self.ladder[bracket]
            params, source = self.new_params(self._rng, pending, budget)
            info = {"bracket": bracket, "rung": bracket, "budget": budget, "source": source}
            out.append(Suggestion(params=params, info=info))
        return out
