"""The table of strategies by name, and the one place the server builds them.

Adding a strategy is one module plus one line in ``STRATEGIES``; the shared contract
tests in ``tests/search/test_strategy_contract.py`` then cover it automatically.

The shape every registry of the project shares (strategies here, stopping rules in
``search.stopping_registry``, models and data sets in ``models``): a table of name ->
entry, ``<kind>_names()`` (sorted), ``get_<kind>(name)`` (the entry, or an error naming
the spec field and listing the known names) and one function that builds from it
(``make_strategy``). Light: the table names each strategy as ``"module:Class"`` and
imports a module the first time its entry is looked up, so naming the strategies (the
spec's schema, ``hpo --help``) imports no strategy, and a strategy's heavy dependencies
(scipy, scikit-optimize) load only when it computes a suggestion.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from search.base import OptionError, Strategy, TrialRecord
from search.space import SearchSpace
from search.status import Direction

__all__ = [
    "STRATEGIES",
    "LazyTable",
    "full_budget",
    "get_strategy",
    "make_strategy",
    "strategy_names",
    "validate_strategy",
]

T = TypeVar("T")


class LazyTable(Mapping[str, T], Generic[T]):
    """A read-only table of name -> object, each given as ``"package.module:attribute"``
    and imported on first lookup (then kept). Iterating, ``len`` and ``in`` see the
    names only and import nothing; ``table[name]``, ``.get`` and ``.values()`` import."""

    def __init__(self, references: Mapping[str, str]) -> None:
        self._references = dict(references)
        self._loaded: dict[str, T] = {}

    def __getitem__(self, name: str) -> T:
        try:
            return self._loaded[name]
        except KeyError:
            pass
        module, _, attribute = self._references[name].partition(":")
        entry: T = getattr(importlib.import_module(module), attribute)
        self._loaded[name] = entry
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._references

    def __iter__(self) -> Iterator[str]:
        return iter(self._references)

    def __len__(self) -> int:
        return len(self._references)

    def __repr__(self) -> str:
        return f"LazyTable({self._references!r})"


STRATEGIES: Mapping[str, type[Strategy]] = LazyTable(
    {
        "random": "search.random:RandomStrategy",
        "grid": "search.grid:GridStrategy",
        "bayes": "search.bayes:BayesStrategy",
        "evolution": "search.evolution:EvolutionStrategy",
        "hyperband": "search.hyperband:HyperbandStrategy",
        "asha": "search.asha:AshaStrategy",
        "pbt": "search.pbt:PbtStrategy",
    }
)


def strategy_names() -> list[str]:
    """Known strategy names, sorted."""
    return sorted(STRATEGIES)


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class called ``name``; ``OptionError("strategy.name")`` if unknown."""
    cls = STRATEGIES.get(name) if isinstance(name, str) else None
    if cls is None:
        known = ", ".join(strategy_names())
        raise OptionError("strategy.name", f"unknown strategy {name!r}; known: {known}")
    return cls


def make_strategy(
    name: str,
    space: SearchSpace,
    history: Sequence[TrialRecord] = (),
    *,
    direction: Direction = "minimize",
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> Strategy:
    """Build strategy ``name`` over ``space`` from ``history`` (see ``Strategy``)."""
    cls = get_strategy(name)
    return cls(space, history, direction=direction, seed=seed, options=options)


def validate_strategy(
    name: str,
    options: Mapping[str, Any] | None,
    space: SearchSpace,
    *,
    max_epochs: int | None = None,
) -> dict[str, Any]:
    """Check a study's strategy config before anything is stored.

    Returns the options with defaults filled in; a strategy that schedules epochs
    itself (``budget_option``) gets the study's ``max_epochs`` as that option's default.
    Raises ``OptionError`` with field
    ``"strategy.name"`` or ``"strategy.options.<key>"``, or ``SpaceError`` (field
    ``"space"``) when the space is unusable for the strategy, e.g. a grid too large:
    the strategy is built once on an empty history so such problems surface here.
    """
    cls = get_strategy(name)
    if cls.budget_option and max_epochs is not None and isinstance(options, Mapping | None):
        options = {cls.budget_option: max_epochs, **(options or {})}
    try:
        validated = cls.validate_options(options)
        cls(space, (), options=validated)
    except OptionError as err:
        raise OptionError(f"strategy.{err.field}", err.message) from err
    return validated


def full_budget(name: str, options: Mapping[str, Any] | None) -> int | None:
    """The budget (epochs) of a study's full-fidelity trials when strategy ``name`` gives
    each trial its own (Hyperband, ASHA: ``max_budget`` of its validated ``options``);
    None for a strategy whose every trial trains the study's whole budget."""
    cls = STRATEGIES.get(name)
    if cls is None or not cls.budget_option or not options:
        return None
    budget = options.get(cls.budget_option)
    return int(budget) if isinstance(budget, int | float) and not isinstance(budget, bool) else None
