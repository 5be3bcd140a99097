"""What the multi-fidelity strategies (Hyperband, ASHA) share: their options, the
ladder of budgets, and how a rung's trials are ranked.

A *budget* is a number of epochs. A trial created by these strategies carries in its
``Suggestion.info``: ``budget`` (the epoch it trains up to), ``rung`` and, for a promoted
configuration, ``parent`` (the trial number it continues from: the server hands the new
trial the parent's checkpoint, so training resumes at the parent's budget instead of
epoch 1). Pure computation.

New configurations (the bottom rung) come from the ``sampler`` option (each strategy's
``default_sampler`` when unset): ``random`` is Li et al.'s plain Hyperband/ASHA;
``bayes`` is the model-based variant (as in BOHB, Falkner et al., 2018, with our GP in
place of its kernel density estimator). Once (parameters + 2) results feed it, a GP
proposes the configuration (``search.fidelity_model``), except for a third of them that
stay random so the model can never starve exploration (BOHB's ``random_fraction``); each
strategy's ``model_fidelity`` says which results feed it (``new_params``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from search.base import Strategy, TrialRecord
from search.checks import is_finite_number
from search.errors import OptionError
from search.status import OPEN

__all__ = [
    "FIDELITY_OPTIONS",
    "SAMPLERS",
    "MultiFidelityStrategy",
    "budget_ladder",
    "check_fidelity_options",
    "rank_key",
    "top_k",
]

FIDELITY_OPTIONS = ("min_budget", "max_budget", "eta", "sampler")
SAMPLERS = ("bayes", "random")
#: Share of new configurations drawn at random even when a model exists (BOHB's 1/3).
RANDOM_FRACTION = 1 / 3


def _positive_int(options: Mapping[str, Any], key: str, default: int | None) -> int:
    value = options.get(key, default)
    if value is None:
        raise OptionError(f"options.{key}", "is required (epochs of the longest trial)")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"options.{key}", f"must be a positive integer of epochs, got {value!r}")
    return value


def check_fidelity_options(
    options: Mapping[str, Any], default_sampler: str = "bayes"
) -> dict[str, Any]:
    """Validate ``min_budget`` (default 1), ``max_budget`` (required), ``eta``
    (default 3, at least 2) and ``sampler`` (default ``default_sampler``) and return
    them."""
    sampler = options.get("sampler", default_sampler)
    if sampler not in SAMPLERS:
        raise OptionError("options.sampler", f"must be one of {list(SAMPLERS)}, got {sampler!r}")
    max_budget = _positive_int(options, "max_budget", None)
    min_budget = _positive_int(options, "min_budget", 1)
    if max_budget < min_budget:
        raise OptionError(
            "options.max_budget", f"must be >= min_budget ({min_budget}), got {max_budget}"
        )
    eta = options.get("eta", 3)
    if isinstance(eta, bool) or not isinstance(eta, int | float) or not math.isfinite(eta):
        raise OptionError("options.eta", f"must be a number >= 2, got {eta!r}")
    if eta < 2:
        raise OptionError("options.eta", f"must be >= 2, got {eta!r}")
    return {"min_budget": min_budget, "max_budget": max_budget, "eta": eta, "sampler": sampler}


def budget_ladder(min_budget: int, max_budget: int, eta: float) -> list[int]:
    """Rung budgets ``min_budget * eta**k`` (rounded, strictly increasing), ending at
    exactly ``max_budget``."""
    ladder: list[int] = []
    k = 0
    while True:
        budget = round(min_budget * eta**k)
        if budget >= max_budget:
            break
        if not ladder or budget > ladder[-1]:
            ladder.append(budget)
        k += 1
    ladder.append(max_budget)
    return ladder


def rank_key(trial: TrialRecord, sign: float) -> tuple[int, float, int]:
    """Sort key putting the best trial of a rung first: completed with a finite value
    (``sign * value`` ascending, so pass -1 to maximize), then the rest; ties by number."""
    value = trial.value
    if trial.status == "completed" and is_finite_number(value):
        return (0, sign * float(value), trial.number)
    return (1, 0.0, trial.number)


def top_k(trials: Sequence[TrialRecord], k: int, sign: float) -> list[TrialRecord]:
    """The ``k`` best completed trials (never a failed one, even if k is larger)."""
    ranked = sorted(trials, key=lambda t: rank_key(t, sign))
    return [t for t in ranked[:k] if rank_key(t, sign)[0] == 0]


class MultiFidelityStrategy(Strategy):
    """Base of the strategies that give each trial its own budget of epochs."""

    budget_option = "max_budget"
    #: The sampler of new configurations unless the study names one.
    default_sampler: ClassVar[str] = "bayes"
    #: What the ``bayes`` sampler's model learns from: "start" or "all" (``new_params``).
    model_fidelity: str = "start"

    @classmethod
    def validate_options(cls, options: Any) -> dict[str, Any]:
        """``min_budget`` (default 1), ``max_budget`` (epochs, required; the study spec
        fills it from ``budget.epochs``), ``eta`` (default 3, >= 2), ``sampler``
        ("bayes" or "random", default ``default_sampler``)."""
        given = cls._check_option_keys(options, FIDELITY_OPTIONS)
        return check_fidelity_options(given, cls.default_sampler)

    def new_params(
        self,
        rng: np.random.Generator,
        pending: Sequence[Mapping[str, Any]],
        start_budget: int,
    ) -> tuple[dict, str]:
        """A new configuration that starts at ``start_budget`` epochs, drawn with
        ``rng`` (the caller's seeded generator, so the answer stays a function of seed
        and history). ``pending`` holds configurations suggested in this ``ask`` but
        not yet in the history, so a model does not propose the same point twice.
        Returns the parameters and their source, "model" or "random" (kept in the
        trial's info).

        With the ``bayes`` sampler a GP proposes it once (parameters + 2) results feed
        the model, except for a third of new configurations that stay random so the
        model can never starve exploration (BOHB's ``random_fraction``). What feeds
        it is the strategy's ``model_fidelity``:

        * ``"start"``: the results at ``start_budget`` of configurations that started
          there, the model asked at that budget: where every configuration starts at
          the bottom rung (ASHA), results there are plentiful and surviving that rung
          is the next hurdle (a higher rung holds only promoted configurations, no
          contrast);
        * ``"all"``: every result of every rung in one GP over configuration x budget,
          asked at the largest budget with two results (``search.fidelity_model``):
          where configurations start at up to the full budget (Hyperband's brackets),
          too few results exist at the starting budget alone.

        Each strategy's choice was measured with ``benchmarks.multi_fidelity`` (the
        README's Benchmarks section has the figures)."""
        if self.options["sampler"] == "bayes" and rng.random() >= RANDOM_FRACTION:
            # Here, not at the top: the model (scipy, scikit-optimize) loads only when a
            # configuration is proposed, never for naming or validating the strategy.
            from search.fidelity_model import propose_at_target

            observed, in_flight = self._fidelity_data(pending)
            enough = len(self.space) + 2
            if self.model_fidelity == "start":
                observed = [o for o in observed if o[1] == start_budget and not o[3]]
            params = propose_at_target(
                self.space,
                [(p, b, v) for p, b, v, _ in observed],
                in_flight,
                direction=self.direction,
                seed=int(rng.integers(2**31)),
                min_budget=self.options["min_budget"],
                max_budget=self.options["max_budget"],
                min_observations=enough,
            )
            if params is not None:
                return params, "model"
        return self.space.sample(rng), "random"

    def _fidelity_data(
        self, pending: Sequence[Mapping[str, Any]]
    ) -> tuple[list[tuple[dict, int, float, bool]], list[Mapping[str, Any]]]:
        """``(params, budget, value, promoted)`` of every completed in-space trial with
        a budget, and the configurations in flight: new ones queued or running (a
        promotion in flight is a configuration already known) plus ``pending``."""
        observed: list[tuple[dict, int, float, bool]] = []
        in_flight: list[Mapping[str, Any]] = []
        for trial in self.history:
            info = trial.info or {}
            budget = info.get("budget")
            if not isinstance(budget, int) or not self.in_space(trial):
                continue
            value = trial.value
            promoted = isinstance(info.get("parent"), int)
            if trial.status == "completed" and is_finite_number(value):
                observed.append((dict(trial.params), budget, float(value), promoted))
            elif trial.status in OPEN and not promoted:
                in_flight.append(trial.params)
        return observed, [*in_flight, *pending]
