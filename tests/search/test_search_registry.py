"""The strategy registry: lookup, construction and up-front validation."""

from __future__ import annotations

import pytest

from search import (
    STRATEGIES,
    GridStrategy,
    OptionError,
    RandomStrategy,
    SearchSpace,
    SpaceError,
    get_strategy,
    make_strategy,
    strategy_names,
    validate_strategy,
)

SPACE = SearchSpace.from_dict({"x": {"type": "float", "low": 0, "high": 1}, "c": ["a", "b"]})


def test_known_strategies() -> None:
    assert {"random", "grid"} <= set(STRATEGIES)
    assert strategy_names() == sorted(STRATEGIES)
    assert get_strategy("random") is RandomStrategy
    assert get_strategy("grid") is GridStrategy


@pytest.mark.parametrize("name", ["bayesian-magic", "", None, "Random"])
def test_unknown_strategy_names_the_field_and_lists_known(name: object) -> None:
    with pytest.raises(OptionError) as info:
        get_strategy(name)  # type: ignore[arg-type]
    assert info.value.field == "strategy.name"
    assert "grid" in info.value.message and "random" in info.value.message
    with pytest.raises(OptionError) as info:
        validate_strategy(name, None, SPACE)  # type: ignore[arg-type]
    assert info.value.field == "strategy.name"


def test_make_strategy_passes_everything_through() -> None:
    strategy = make_strategy("grid", SPACE, direction="maximize", seed=4, options={"points": 2})
    assert isinstance(strategy, GridStrategy)
    assert strategy.direction == "maximize" and strategy.seed == 4
    assert strategy.options == {"points": 2, "shuffle": True}
    assert strategy.capacity == 4


def test_validate_strategy_fills_defaults() -> None:
    assert validate_strategy("grid", None, SPACE) == {"points": 5, "shuffle": True}
    assert validate_strategy("random", {}, SPACE) == {}


def test_validate_strategy_prefixes_option_fields() -> None:
    with pytest.raises(OptionError) as info:
        validate_strategy("grid", {"points": 1}, SPACE)
    assert info.value.field == "strategy.options.points"


def test_validate_strategy_surfaces_space_problems() -> None:
    big = SearchSpace.from_dict({f"x{i}": {"type": "float", "low": 0, "high": 1} for i in range(9)})
    with pytest.raises(SpaceError) as info:
        validate_strategy("grid", {"points": 5}, big)
    assert info.value.field == "space"
    assert validate_strategy("random", None, big) == {}
