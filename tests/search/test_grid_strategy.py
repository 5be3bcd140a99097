"""Grid search: full coverage exactly once, size cap, ordering and history matching."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest

from search import GridStrategy, OptionError, SearchSpace, SpaceError, TrialRecord
from search.grid import MAX_GRID_POINTS

SPACE = SearchSpace.from_dict(
    {
        "opt": ["adam", "sgd"],
        "layers": {"type": "int", "low": 1, "high": 3},
        "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    }
)  # 2 * 3 * 3 = 18 points with points=3


def key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def expected_points(space: SearchSpace, points: int) -> set[str]:
    names = space.names
    axes = [p.grid(points) for p in space]
    return {key(dict(zip(names, combo, strict=True))) for combo in itertools.product(*axes)}


@pytest.mark.parametrize("shuffle", [True, False])
def test_every_point_exactly_once_then_exhausted(shuffle: bool) -> None:
    options = {"points": 3, "shuffle": shuffle}
    history: list[TrialRecord] = []
    indices: list[int] = []
    for _ in range(20):  # bounded, so a grid that never runs out fails instead of hanging
        strategy = GridStrategy(SPACE, history, seed=9, options=options)
        assert strategy.capacity == 18
        batch = strategy.ask(4)
        if not batch:
            break
        for s in batch:
            indices.append(s.info["grid_index"])
            # Status does not matter: a failed trial still occupies its point.
            status = "failed" if len(history) % 3 == 0 else "completed"
            history.append(TrialRecord(len(history), s.params, status, 1.0))
    assert sorted(indices) == list(range(18))
    assert {key(dict(t.params)) for t in history} == expected_points(SPACE, 3)
    assert len(history) == 18
    final = GridStrategy(SPACE, history, seed=9, options=options)
    assert final.exhausted and final.ask(5) == []


def test_one_instance_does_not_repeat_points() -> None:
    strategy = GridStrategy(SPACE, options={"points": 3})
    seen = [key(s.params) for _ in range(10) for s in strategy.ask(4)]
    assert len(seen) == 18 == len(set(seen))
    assert strategy.exhausted and strategy.ask(1) == []


def test_info_index_matches_point() -> None:
    strategy = GridStrategy(SPACE, options={"points": 3})
    for s in strategy.ask(18):
        index = s.info["grid_index"]
        assert strategy.point(index) == s.params
        assert strategy.index_of(s.params) == index
    with pytest.raises(IndexError):
        strategy.point(18)


def test_unshuffled_order_is_index_order_first_param_slowest() -> None:
    strategy = GridStrategy(SPACE, options={"points": 3, "shuffle": False})
    batch = strategy.ask(4)
    assert [s.info["grid_index"] for s in batch] == [0, 1, 2, 3]
    assert batch[0].params == {"opt": "adam", "layers": 1, "lr": 1e-3}
    assert batch[1].params["lr"] == pytest.approx(1e-2, rel=1e-12)
    assert batch[3].params == {"opt": "adam", "layers": 2, "lr": 1e-3}


def test_shuffle_is_seeded() -> None:
    def order(seed: int) -> list[int]:
        return [
            s.info["grid_index"]
            for s in GridStrategy(SPACE, seed=seed, options={"points": 3}).ask(18)
        ]

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1) != list(range(18))


def test_float_history_matches_after_json_noise() -> None:
    strategy = GridStrategy(SPACE, options={"points": 3, "shuffle": False})
    point = strategy.point(1)  # lr = 1e-2 from a geometric grid
    noisy = {**point, "lr": point["lr"] * (1 + 1e-14)}
    rebuilt = GridStrategy(SPACE, [TrialRecord(0, noisy, "completed", 0.1)], options={"points": 3})
    assert rebuilt.index_of(noisy) == 1
    assert 1 not in [s.info["grid_index"] for s in rebuilt.ask(18)]


def test_off_grid_and_out_of_space_history_ignored() -> None:
    history = [
        TrialRecord(0, {"opt": "adam", "layers": 1, "lr": 0.05}, "completed", 1.0),  # off grid
        TrialRecord(1, {"opt": "adam", "layers": 1}, "completed", 1.0),  # missing param
        TrialRecord(2, {"opt": "nadam", "layers": 1, "lr": 1e-3}, "completed", 1.0),  # outside
        TrialRecord(3, {"opt": "adam", "layers": True, "lr": 1e-3}, "completed", 1.0),
    ]
    strategy = GridStrategy(SPACE, history, options={"points": 3})
    assert len(strategy.ask(100)) == 18


def test_log_grid_values_are_geometric() -> None:
    space = SearchSpace.from_dict({"lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}})
    values = sorted(s.params["lr"] for s in GridStrategy(space, options={"points": 5}).ask(10))
    assert np.allclose(values, [1e-5, 1e-4, 1e-3, 1e-2, 1e-1], rtol=1e-12)
    ratios = np.diff(np.log10(values))
    assert np.allclose(ratios, 1.0)


def test_int_lattice_values() -> None:
    space = SearchSpace.from_dict(
        {
            "small": {"type": "int", "low": 0, "high": 10, "step": 3},
            "big": {"type": "int", "low": 0, "high": 1000, "step": 10},
        }
    )
    strategy = GridStrategy(space, options={"points": 5})
    assert strategy.capacity == 4 * 5
    points = [s.params for s in strategy.ask(100)]
    assert {p["small"] for p in points} == {0, 3, 6, 9}
    assert {p["big"] for p in points} == {0, 250, 500, 750, 1000}


def test_grid_size_cap_message() -> None:
    space = SearchSpace.from_dict(
        {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(3)}
    )
    with pytest.raises(SpaceError) as info:
        GridStrategy(space, options={"points": 101})
    assert info.value.field == "space"
    assert "1,030,301" in info.value.message
    assert "options.points" in info.value.message
    assert GridStrategy(space, options={"points": 100}).capacity == MAX_GRID_POINTS


def test_grid_size_cap_huge_space_is_fast() -> None:
    space = SearchSpace.from_dict({f"c{i}": ["a", "b"] for i in range(5000)})
    with pytest.raises(SpaceError) as info:
        GridStrategy(space)
    assert "about 10^1505" in info.value.message


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"points": 1}, "options.points"),
        ({"points": True}, "options.points"),
        ({"points": "5"}, "options.points"),
        ({"points": 5.0}, "options.points"),
        ({"points": MAX_GRID_POINTS + 1}, "options.points"),
        ({"shuffle": "yes"}, "options.shuffle"),
        ({"point": 5}, "options.point"),
    ],
)
def test_grid_options_validated(options: dict[str, Any], field: str) -> None:
    with pytest.raises(OptionError) as info:
        GridStrategy.validate_options(options)
    assert info.value.field == field


def test_grid_options_defaults() -> None:
    assert GridStrategy.validate_options(None) == {"points": 5, "shuffle": True}
    assert GridStrategy.validate_options({"shuffle": False}) == {"points": 5, "shuffle": False}
