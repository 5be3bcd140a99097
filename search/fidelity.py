"""What the multi-fidelity strategies (Hyperband, ASHA) share: their options, the
ladder of budgets, and how a rung's trials are ranked.

A *budget* is a number of epochs. A trial created by these strategies carries in its
``Suggestion.info``: ``budget`` (the epoch it trains up to), ``rung`` and, for a promoted
configuration, ``parent`` (the trial number it continues from: the server hands the new
trial the parent's checkpoint, so training resumes at the parent's budget instead of
epoch 1). Pure computation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from search.base import Strategy, TrialRecord
from search.errors import OptionError

__all__ = [
    "FIDELITY_OPTIONS",
    "MultiFidelityStrategy",
    "budget_ladder",
    "check_fidelity_options",
    "rank_key",
    "top_k",
]

FIDELITY_OPTIONS = ("min_budget", "max_budget", "eta")


def _positive_int(options: Mapping[str, Any], key: str, default: int | None) -> int:
    value = options.get(key, default)
    if value is None:
        raise OptionError(f"options.{key}", "is required (epochs of the longest trial)")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"options.{key}", f"must be a positive integer of epochs, got {value!r}")
    return value


def check_fidelity_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``min_budget`` (default 1), ``max_budget`` (required) and ``eta``
    (default 3, at least 2) and return them."""
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
    return {"min_budget": min_budget, "max_budget": max_budget, "eta": eta}


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
    if trial.status == "completed" and isinstance(value, int | float) and math.isfinite(value):
        return (0, sign * float(value), trial.number)
    return (1, 0.0, trial.number)


def top_k(trials: Sequence[TrialRecord], k: int, sign: float) -> list[TrialRecord]:
    """The ``k`` best completed trials (never a failed one, even if k is larger)."""
    ranked = sorted(trials, key=lambda t: rank_key(t, sign))
    return [t for t in ranked[:k] if rank_key(t, sign)[0] == 0]


class MultiFidelityStrategy(Strategy):
    """Base of the strategies that give each trial its own budget of epochs."""

    budget_option = "max_budget"

    @classmethod
    def validate_options(cls, options: Any) -> dict[str, Any]:
        """``min_budget`` (default 1), ``max_budget`` (epochs, required; the study spec
        fills it from ``budget.epochs``), ``eta`` (default 3, >= 2)."""
        return check_fidelity_options(cls._check_option_keys(options, FIDELITY_OPTIONS))
