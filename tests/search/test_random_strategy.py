"""Random search: seeding by (seed, history length), independence, plain values."""

from __future__ import annotations

import numpy as np
import pytest

from search import OptionError, RandomStrategy, SearchSpace, TrialRecord

SPACE = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
        "units": {"type": "int", "low": 8, "high": 256, "step": 8},
        "opt": ["adam", "sgd"],
    }
)


def records(n: int) -> list[TrialRecord]:
    return [
        TrialRecord(i, {"lr": 0.01, "units": 8, "opt": "adam"}, "completed", 1.0) for i in range(n)
    ]


def test_rng_is_seeded_by_seed_and_history_length() -> None:
    expected_rng = np.random.default_rng([4, 3])
    expected = SPACE.sample(expected_rng)
    assert RandomStrategy(SPACE, records(3), seed=4).ask(1)[0].params == expected


def test_history_length_changes_the_draws() -> None:
    a = RandomStrategy(SPACE, records(2), seed=1).ask(3)
    b = RandomStrategy(SPACE, records(3), seed=1).ask(3)
    c = RandomStrategy(SPACE, records(3), seed=1).ask(3)
    assert a != b and b == c


def test_one_ask_gives_distinct_draws() -> None:
    lrs = [s.params["lr"] for s in RandomStrategy(SPACE).ask(50)]
    assert len(set(lrs)) == 50


def test_repeated_asks_on_one_instance_continue_the_stream() -> None:
    strategy = RandomStrategy(SPACE, seed=2)
    first, second = strategy.ask(2), strategy.ask(2)
    assert first != second
    assert RandomStrategy(SPACE, seed=2).ask(4) == first + second


def test_values_are_plain_python_and_info_empty() -> None:
    for s in RandomStrategy(SPACE).ask(20):
        assert type(s.params["lr"]) is float
        assert type(s.params["units"]) is int and s.params["units"] % 8 == 0
        assert s.params["opt"] in ("adam", "sgd")
        assert s.info == {}


def test_unbounded() -> None:
    strategy = RandomStrategy(SPACE)
    assert strategy.capacity is None and not strategy.exhausted
    assert len(strategy.ask(1000)) == 1000


def test_takes_no_options() -> None:
    assert RandomStrategy.validate_options({}) == {}
    with pytest.raises(OptionError) as info:
        RandomStrategy(SPACE, options={"points": 3})
    assert info.value.field == "options.points"
