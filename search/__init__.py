"""Search spaces and strategies: pure computation, no I/O.

The server builds a ``SearchSpace`` from the study spec, then a strategy from the
trial history with ``make_strategy`` and asks it for ``Suggestion``s
(``search.base.Strategy``). Early stopping is a separate contract: a stopping rule
(``search.stopping.StoppingRule``, built by ``search.stopping_registry``) answers
continue/stop to a trial's report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers see; at run time ``__getattr__`` below
    from search.asha import AshaStrategy
    from search.base import Strategy, Suggestion, TrialRecord
    from search.bayes import BayesStrategy
    from search.errors import FieldError, OptionError, SpaceError
    from search.evolution import EvolutionStrategy
    from search.fidelity import MultiFidelityStrategy
    from search.grid import MAX_GRID_POINTS, GridStrategy
    from search.hyperband import HyperbandStrategy
    from search.random import RandomStrategy
    from search.registry import (
        STRATEGIES,
        get_strategy,
        make_strategy,
        strategy_names,
        validate_strategy,
    )
    from search.space import (
        MAX_PARAMS,
        CategoricalParam,
        FloatParam,
        IntParam,
        Param,
        SearchSpace,
        param_from_spec,
    )
    from search.status import TERMINAL, Decision, Direction, TrialStatus

#: Where each public name lives. ``import search`` imports nothing more: a name's module
#: is imported on first access (``from search import SearchSpace`` loads the space only),
#: so the client and the CLI never load a strategy they do not build.
_EXPORTS: dict[str, str] = {
    "AshaStrategy": "search.asha",
    "BayesStrategy": "search.bayes",
    "EvolutionStrategy": "search.evolution",
    "MultiFidelityStrategy": "search.fidelity",
    "MAX_GRID_POINTS": "search.grid",
    "GridStrategy": "search.grid",
    "HyperbandStrategy": "search.hyperband",
    "RandomStrategy": "search.random",
    "Strategy": "search.base",
    "Suggestion": "search.base",
    "TrialRecord": "search.base",
    "FieldError": "search.errors",
    "OptionError": "search.errors",
    "SpaceError": "search.errors",
    "STRATEGIES": "search.registry",
    "get_strategy": "search.registry",
    "make_strategy": "search.registry",
    "strategy_names": "search.registry",
    "validate_strategy": "search.registry",
    "MAX_PARAMS": "search.space",
    "CategoricalParam": "search.space",
    "FloatParam": "search.space",
    "IntParam": "search.space",
    "Param": "search.space",
    "SearchSpace": "search.space",
    "param_from_spec": "search.space",
    "TERMINAL": "search.status",
    "Decision": "search.status",
    "Direction": "search.status",
    "TrialStatus": "search.status",
}


__getattr__, __dir__ = lazy_exports("search", globals(), _EXPORTS)


__all__ = [
    "MAX_GRID_POINTS",
    "MAX_PARAMS",
    "STRATEGIES",
    "TERMINAL",
    "AshaStrategy",
    "BayesStrategy",
    "CategoricalParam",
    "Decision",
    "Direction",
    "EvolutionStrategy",
    "FieldError",
    "FloatParam",
    "GridStrategy",
    "HyperbandStrategy",
    "IntParam",
    "MultiFidelityStrategy",
    "OptionError",
    "Param",
    "RandomStrategy",
    "SearchSpace",
    "SpaceError",
    "Strategy",
    "Suggestion",
    "TrialRecord",
    "TrialStatus",
    "get_strategy",
    "make_strategy",
    "param_from_spec",
    "strategy_names",
    "validate_strategy",
]
