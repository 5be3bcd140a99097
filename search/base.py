"""The strategy contract: how the server asks for suggestions.

A strategy is a pure function of ``(space, history, direction, seed, options)``
(Vizier's "designer" shape): the server rebuilds it from the database whenever it
likes, and the same inputs always give the same suggestions. Strategies do no I/O,
read no clock and never touch the global RNG. Early stopping is not a strategy's
business: stopping rules have their own contract (``search.stopping``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from search.checks import is_finite_number
from search.errors import FieldError, OptionError, SpaceError, TakesOptions
from search.space import SearchSpace
from search.status import TERMINAL, Decision, Direction, TrialStatus

__all__ = [
    "TERMINAL",
    "Decision",
    "Direction",
    "FieldError",
    "OptionError",
    "SpaceError",
    "Strategy",
    "Suggestion",
    "TrialRecord",
    "TrialStatus",
]


@dataclass(frozen=True)
class TrialRecord:
    """One trial of the history, as the server feeds it to a strategy.

    ``params`` may lie outside the current space (the study's space changed, or the
    user enqueued a trial by hand); strategies must ignore such trials, not crash.
    Neither the record nor its mappings change once built (a changed trial is a new
    record): strategies may remember what they derived from one by its identity.
    ``value`` is the final objective value (None until completed, or when the
    trial failed); ``intermediate`` maps step -> reported value; ``info`` is the
    ``Suggestion.info`` the trial was created with (rung, bracket, generation, parent).
    """

    number: int
    params: Mapping[str, Any]
    status: str
    value: float | None = None
    intermediate: Mapping[int, float] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suggestion:
    """A point to evaluate, plus strategy metadata stored with the trial
    (e.g. ``{"grid_index": 17}``; later rung, bracket or generation)."""

    params: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


class Strategy(TakesOptions, ABC):
    """Base class of all search strategies.

    Subclasses set ``name``, implement ``ask`` and, when they take options, override
    ``validate_options``. Constructing a strategy validates ``options``
    (``OptionError`` naming ``"options.<key>"``) and may raise ``SpaceError`` when
    the space is unusable for it (a grid too large, say).

    Contract for ``ask(n)``: return at most ``n`` suggestions, all inside the space
    (fewer, possibly none, once exhausted); ``n < 0`` raises ``ValueError``. The
    answer depends only on the constructor's arguments and on earlier ``ask`` calls
    on the same instance; a strategy rebuilt from a history that includes earlier
    suggestions continues where the previous one stopped.
    """

    name: ClassVar[str]
    options_field = "options"
    options_kind = "strategy"
    #: The option holding the longest trial's epochs, for strategies that give each
    #: trial its own budget (Hyperband, ASHA); ``validate_strategy`` defaults it to the
    #: study's ``budget.epochs``.
    budget_option: ClassVar[str | None] = None
    #: Whether suggestions asked ahead stay good when a few results arrive before they
    #: are used: true where the history shapes suggestions through a model only, false
    #: where it does through bookkeeping (rungs, generations, grid order). The server
    #: may then ask for more than the free slots when asks are its bottleneck
    #: (``server.lookahead``); the answers themselves are unchanged.
    lookahead: ClassVar[bool] = False

    def __init__(
        self,
        space: SearchSpace,
        history: Sequence[TrialRecord] = (),
        *,
        direction: Direction = "minimize",
        seed: int = 0,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
        if direction not in ("minimize", "maximize"):
            raise OptionError("direction", f"must be 'minimize' or 'maximize', got {direction!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            # numpy seeds must be non-negative; refusing beats silently folding them.
            raise OptionError("seed", f"must be a non-negative integer, got {seed!r}")
        self.space = space
        self.history: tuple[TrialRecord, ...] = tuple(history)
        self.direction: Direction = direction
        self.seed = seed
        self.options: dict[str, Any] = type(self).validate_options(options)
        self._setup()

    def _setup(self) -> None:
        """Hook for subclasses: build derived state from ``space``, ``history``,
        ``seed`` and the validated ``options`` (the one place a strategy customises
        construction, so no subclass repeats the constructor's signature)."""
        return None

    @staticmethod
    def _check_n(n: int) -> None:
        """Validate the ``n`` of ``ask(n)``; every ``ask`` calls this first."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an integer, got {n!r}")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")

    @abstractmethod
    def ask(self, n: int) -> list[Suggestion]:
        """Up to ``n`` new suggestions (see the class contract)."""

    @property
    def exhausted(self) -> bool:
        """True when ``ask`` will never return anything again."""
        return False

    @property
    def capacity(self) -> int | None:
        """How many distinct suggestions this strategy can ever give; None if unbounded."""
        return None

    # Helpers for subclasses that learn from the history.

    def in_space(self, trial: TrialRecord) -> bool:
        """True when the trial's params are a point of the current space."""
        return self.space.contains(trial.params)

    def completed(self) -> list[TrialRecord]:
        """Completed, in-space trials with a finite value, in history order."""
        return [
            t
            for t in self.history
            if t.status == "completed" and is_finite_number(t.value) and self.in_space(t)
        ]

    def loss(self, value: float) -> float:
        """``value`` turned into a quantity to minimize, whatever the direction."""
        return value if self.direction == "minimize" else -value
