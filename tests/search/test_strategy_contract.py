"""The shared contract every registered strategy must pass.

Parametrized over ``STRATEGIES``: a strategy added to the registry is tested here
without touching this file. Give it test options in ``STRATEGY_OPTIONS`` if its
defaults do not suit the spaces below.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pytest

from search import (
    STRATEGIES,
    OptionError,
    SearchSpace,
    Strategy,
    Suggestion,
    TrialRecord,
    make_strategy,
    validate_strategy,
)

# Per-strategy options for these tests; {} when absent.
STRATEGY_OPTIONS: dict[str, dict[str, Any]] = {
    "hyperband": {"max_budget": 9},
    "asha": {"max_budget": 9},
    "pbt": {"max_budget": 9, "interval": 3, "population_size": 4},
    "grid": {"points": 3},
    # bayes: a short design so the 30-round loop runs mostly on the model, and a small
    # model so that it does so quickly.
    "bayes": {"n_initial_points": 4, "n_candidates": 64, "max_kernel_fit_points": 16},
}
# Strategies whose suggestions do not depend on the seed by design.
SEED_INSENSITIVE: set[str] = set()

SPACES: dict[str, dict[str, Any]] = {
    "mixed": {
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "layers": {"type": "int", "low": 1, "high": 6},
        "units": {"type": "int", "low": 16, "high": 512, "step": 16},
        "batch": {"type": "int", "low": 8, "high": 1024, "log": True},
        "opt": ["adam", "sgd", "rmsprop"],
    },
    "small_categorical": {"act": ["relu", "tanh", "gelu"], "bias": [True, False]},
    "single_int": {"n": {"type": "int", "low": -5, "high": 40, "step": 7}},
    # Conditional: children of a categorical, a child shared by two branches, a nested
    # condition (dilation needs kernel 5, which needs model cnn) and a numeric choice.
    "conditional": {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "model": ["mlp", "cnn", "linear"],
        "units": {"type": "int", "low": 32, "high": 256, "log": True, "when": {"model": "mlp"}},
        "layers": {"type": "int", "low": 1, "high": 3, "when": {"model": ["mlp", "cnn"]}},
        "filters": {"type": "int", "low": 8, "high": 64, "step": 8, "when": {"model": "cnn"}},
        "kernel": {"type": "categorical", "choices": [3, 5], "when": {"model": "cnn"}},
        "dilation": {"type": "categorical", "choices": [1, 2], "when": {"kernel": 5}},
    },
    # Conditional and tiny: 4 distinct points, so bounded strategies run out in the loop.
    "conditional_tiny": {
        "use": [True, False],
        "depth": {"type": "int", "low": 0, "high": 2, "when": {"use": True}},
    },
}

NAMES = sorted(STRATEGIES)


def options(name: str) -> dict[str, Any]:
    return dict(STRATEGY_OPTIONS.get(name, {}))


def build(
    name: str, space: SearchSpace, history: list[TrialRecord] | tuple[()] = (), **kw: Any
) -> Strategy:
    kw.setdefault("options", options(name))
    return make_strategy(name, space, history, **kw)


def toy_objective(params: Mapping[str, Any]) -> float:
    """A deterministic score for any point of any test space."""
    total = 0.0
    for key, value in sorted(params.items()):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total += math.log1p(abs(float(value)))
        else:
            total += len(json.dumps(value)) * 0.1
        total += len(key) * 0.01
    return total


def as_records(suggestions: list[Suggestion], start: int) -> list[TrialRecord]:
    return [
        TrialRecord(
            number=start + i, params=s.params, status="completed", value=toy_objective(s.params)
        )
        for i, s in enumerate(suggestions)
    ]


@pytest.fixture(params=sorted(SPACES))
def space(request: pytest.FixtureRequest) -> SearchSpace:
    return SearchSpace.from_dict(SPACES[request.param])


@pytest.mark.parametrize("name", NAMES)
def test_registry_names_match(name: str) -> None:
    assert STRATEGIES[name].name == name


@pytest.mark.parametrize("name", NAMES)
def test_suggestions_are_inside_the_space(name: str, space: SearchSpace) -> None:
    strategy = build(name, space)
    suggestions = strategy.ask(5)
    assert 0 < len(suggestions) <= 5
    for s in suggestions:
        assert isinstance(s, Suggestion)
        assert space.contains(s.params), s.params
        assert isinstance(s.info, dict)
        json.dumps(s.params)  # plain Python values that the server can store as JSON
        json.dumps(s.info)


@pytest.mark.parametrize("name", NAMES)
def test_same_inputs_same_suggestions(name: str, space: SearchSpace) -> None:
    history = as_records(build(name, space, seed=11).ask(2), 0)
    a = build(name, space, history, seed=3).ask(4)
    b = build(name, space, history, seed=3).ask(4)
    assert a == b


@pytest.mark.parametrize("name", [n for n in NAMES if n not in SEED_INSENSITIVE])
def test_different_seeds_differ(name: str) -> None:
    space = SearchSpace.from_dict(SPACES["mixed"])
    a = build(name, space, seed=1).ask(5)
    b = build(name, space, seed=2).ask(5)
    assert [s.params for s in a] != [s.params for s in b]


@pytest.mark.parametrize("name", NAMES)
def test_ask_zero_and_negative(name: str, space: SearchSpace) -> None:
    strategy = build(name, space)
    assert strategy.ask(0) == []
    with pytest.raises(ValueError):
        strategy.ask(-1)


@pytest.mark.parametrize("name", NAMES)
def test_messy_history_does_not_crash(name: str, space: SearchSpace) -> None:
    good = build(name, space, seed=5).ask(3)
    p0, p1, p2 = (s.params for s in good) if len(good) == 3 else (good[0].params,) * 3
    first = space.params[0].name
    history = [
        TrialRecord(0, p0, "failed", None),
        TrialRecord(1, p1, "pruned", 0.3, {0: 0.9, 1: 0.5}),
        TrialRecord(2, p2, "stopped", None, {0: 1.0}),
        TrialRecord(3, p0, "running", None, {0: 0.1}),
        TrialRecord(4, p1, "queued"),
        TrialRecord(5, p2, "completed", float("nan")),
        TrialRecord(6, p0, "completed", float("inf")),
        TrialRecord(7, {first: "not-a-value"}, "completed", 1.0),
        TrialRecord(8, {**p1, "removed_param": 3}, "completed", 0.5),
        TrialRecord(9, {}, "completed", 0.2),
        TrialRecord(10, {"only": [1, 2]}, "failed"),
        TrialRecord(11, p1, "completed", 0.25),
    ]
    for direction in ("minimize", "maximize"):
        strategy = build(name, space, history, direction=direction)
        for s in strategy.ask(4):
            assert space.contains(s.params)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize("name", NAMES)
def test_simulated_loop_respects_capacity(name: str, space: SearchSpace, direction: str) -> None:
    def run() -> list[TrialRecord]:
        history: list[TrialRecord] = []
        for _ in range(30):
            strategy = build(name, space, history, direction=direction, seed=7)
            capacity = strategy.capacity
            assert capacity is None or (isinstance(capacity, int) and capacity >= 1)
            was_exhausted = strategy.exhausted
            batch = strategy.ask(3)
            assert len(batch) <= 3
            if was_exhausted:
                assert batch == []
            for s in batch:
                assert space.contains(s.params)
            history.extend(as_records(batch, len(history)))
            if capacity is not None:
                assert len(history) <= capacity
                keys = {json.dumps(t.params, sort_keys=True) for t in history}
                assert len(keys) == len(history), "a bounded strategy repeated a point"
                if len(history) == capacity:
                    rebuilt = build(name, space, history, direction=direction, seed=7)
                    assert rebuilt.exhausted
                    assert rebuilt.ask(3) == []
        return history

    first = run()
    assert first, "the loop produced no trials"
    assert run() == first  # rebuilding from history is deterministic end to end


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_rejected(name: str) -> None:
    space = SearchSpace.from_dict(SPACES["mixed"])
    with pytest.raises(OptionError) as info:
        make_strategy(name, space, options={**options(name), "bogus_option": 1})
    assert info.value.field == "options.bogus_option"
    with pytest.raises(OptionError) as info:
        validate_strategy(name, {"bogus_option": 1}, space)
    assert info.value.field == "strategy.options.bogus_option"


@pytest.mark.parametrize("name", NAMES)
def test_options_must_be_a_mapping(name: str) -> None:
    with pytest.raises(OptionError) as info:
        STRATEGIES[name].validate_options(["points"])  # type: ignore[arg-type]
    assert info.value.field == "options"


@pytest.mark.parametrize("name", NAMES)
def test_default_options_validate(name: str) -> None:
    space = SearchSpace.from_dict(SPACES["small_categorical"])
    # the study's epochs are the default budget of strategies that schedule epochs
    assert isinstance(validate_strategy(name, None, space, max_epochs=9), dict)
    assert isinstance(validate_strategy(name, {}, space, max_epochs=9), dict)


@pytest.mark.parametrize("name", NAMES)
def test_direction_and_seed_validated(name: str) -> None:
    space = SearchSpace.from_dict(SPACES["small_categorical"])
    assert build(name, space, direction="maximize").direction == "maximize"
    with pytest.raises(OptionError) as info:
        build(name, space, direction="up")
    assert info.value.field == "direction"
    with pytest.raises(OptionError) as info:
        build(name, space, seed=-1)
    assert info.value.field == "seed"


def test_strategies_do_not_decide_reports() -> None:
    """Early stopping belongs to stopping rules (``search.stopping``), not strategies."""
    assert not hasattr(Strategy, "decide")
    for cls in STRATEGIES.values():
        assert not hasattr(cls, "decide"), f"{cls.name} decides reports: make it a stopping rule"
