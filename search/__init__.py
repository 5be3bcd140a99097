"""Search spaces and strategies: pure computation, no I/O.

The server builds a ``SearchSpace`` from the study spec, then a strategy from the
trial history with ``make_strategy`` and asks it for ``Suggestion``s
(``search.base.Strategy``). Early stopping is a separate contract: a stopping rule
(``search.stopping.StoppingRule``, built by ``search.stopping_registry``) answers
continue/stop to a trial's report.
"""

from __future__ import annotations

from search.asha import AshaStrategy
from search.base import (
    TERMINAL,
    Decision,
    Direction,
    Strategy,
    Suggestion,
    TrialRecord,
    TrialStatus,
)
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
