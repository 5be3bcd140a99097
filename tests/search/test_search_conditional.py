"""Conditional parameters: the ``when`` spec (one validation rule per test, exact field),
activity, sampling, membership, serialization, and grid search over such spaces."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest

from search import CategoricalParam, GridStrategy, IntParam, SearchSpace, SpaceError, TrialRecord
from search.grid import MAX_GRID_POINTS

DEMO = {
    "model": {"type": "categorical", "choices": ["mlp", "cnn"]},
    "units": {"type": "int", "low": 32, "high": 256, "log": True, "when": {"model": "mlp"}},
    "filters": {"type": "int", "low": 8, "high": 64, "log": True, "when": {"model": "cnn"}},
}
NESTED = {
    "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    "model": ["mlp", "cnn", "linear"],
    "units": {"type": "int", "low": 32, "high": 256, "log": True, "when": {"model": "mlp"}},
    "layers": {"type": "int", "low": 1, "high": 3, "when": {"model": ["mlp", "cnn"]}},
    "kernel": {"type": "categorical", "choices": [3, 5], "when": {"model": "cnn"}},
    "dilation": {"type": "categorical", "choices": [True, False], "when": {"kernel": 5}},
    "pad": {
        "type": "categorical",
        "choices": ["same", "valid"],
        "when": {"model": "cnn", "kernel": [5]},
    },
}


def field_of(data: Any) -> str:
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict(data)
    return info.value.field


def key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


# --- validation -------------------------------------------------------------------


@pytest.mark.parametrize("when", [None, [], "model", 3, {}, [("model",)]])
def test_when_must_be_a_non_empty_mapping(when: Any) -> None:
    assert field_of({**DEMO, "units": {**DEMO["units"], "when": when}}) == "units.when"


@pytest.mark.parametrize("parent", [3, "", "bad name"])
def test_when_parent_must_be_a_name(parent: Any) -> None:
    assert field_of({**DEMO, "units": {**DEMO["units"], "when": {parent: "mlp"}}}) == "units.when"


def test_when_parent_must_exist() -> None:
    data = {**DEMO, "units": {**DEMO["units"], "when": {"arch": "mlp"}}}
    assert field_of(data) == "units.when.arch"


def test_when_parent_must_be_declared_before() -> None:
    data = {"units": DEMO["units"], "model": DEMO["model"]}
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict(data)
    assert info.value.field == "units.when.model"
    assert "declared before" in info.value.message


def test_when_parent_cannot_be_itself() -> None:
    assert field_of(
        {"model": {"type": "categorical", "choices": ["a"], "when": {"model": "a"}}}
    ) == ("model.when.model")


def test_when_parent_must_be_categorical() -> None:
    data = {"n": {"type": "int", "low": 1, "high": 3}, "x": {**DEMO["units"], "when": {"n": 1}}}
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict(data)
    assert info.value.field == "x.when.n"
    assert "categorical" in info.value.message


@pytest.mark.parametrize("allowed", ["rnn", ["mlp", "rnn"], [True], [1]])
def test_when_values_must_be_parent_choices(allowed: Any) -> None:
    data = {**DEMO, "units": {**DEMO["units"], "when": {"model": allowed}}}
    assert field_of(data) == "units.when.model"


@pytest.mark.parametrize("allowed", [[], ["mlp", "mlp"], [["mlp"]], {"a": 1}])
def test_when_values_shape(allowed: Any) -> None:
    data = {**DEMO, "units": {**DEMO["units"], "when": {"model": allowed}}}
    assert field_of(data) == "units.when.model"


def test_true_does_not_satisfy_a_condition_on_one() -> None:
    data = {"c": [1, True], "x": {"type": "float", "low": 0, "high": 1, "when": {"c": 1}}}
    space = SearchSpace.from_dict(data)
    assert space.is_active("x", {"c": 1})
    assert not space.is_active("x", {"c": True})


# --- activity, sampling, membership --------------------------------------------------


def test_activity_api() -> None:
    space = SearchSpace.from_dict(NESTED)
    assert space.conditional and not SearchSpace.from_dict({"a": ["x"]}).conditional
    assert space.is_active("lr", {})
    assert space.is_active("units", {"model": "mlp"})
    assert not space.is_active("units", {"model": "cnn"})
    assert not space.is_active("units", {})  # parent unset
    assert space.active_names({"model": "cnn", "kernel": 5}) == [
        "lr",
        "model",
        "layers",
        "kernel",
        "dilation",
        "pad",
    ]
    # A nested child is inactive when its parent is, whatever value the parent holds.
    assert not space.is_active("dilation", {"model": "mlp", "kernel": 5})
    assert space.project({"lr": 0.01, "model": "linear", "units": 64, "x": 1}) == {
        "lr": 0.01,
        "model": "linear",
    }
    with pytest.raises(KeyError):
        space.is_active("nope", {})


def test_sample_draws_only_active_parameters() -> None:
    space = SearchSpace.from_dict(NESTED)
    rng = np.random.default_rng(0)
    points = [space.sample(rng) for _ in range(300)]
    assert all(space.contains(p) for p in points)
    assert all(list(p) == space.active_names(p) for p in points)
    assert {p["model"] for p in points} == {"mlp", "cnn", "linear"}
    assert any("dilation" in p for p in points) and any(
        "kernel" in p and "dilation" not in p for p in points
    )


def test_unconditional_sampling_stream_unchanged() -> None:
    # Conditions must not change how unconditional spaces use the generator.
    space = SearchSpace.from_dict({"a": {"type": "float", "low": 0, "high": 1}, "b": ["x", "y"]})
    rng = np.random.default_rng(3)
    expected_rng = np.random.default_rng(3)
    expected = {
        "a": float(expected_rng.uniform(0, 1)),
        "b": ["x", "y"][int(expected_rng.integers(0, 2))],
    }
    assert space.sample(rng) == expected


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"model": "cnn", "filters": 8, "units": 64}, "units", "inactive: model is cnn"),
        ({"model": "mlp"}, "units", "missing"),
        ({"model": "mlp", "units": 64, "filters": 8}, "filters", "inactive: model is mlp"),
        ({"model": "gru", "units": 64}, "model", "is not one of"),
    ],
)
def test_check_inactive_must_be_absent(params: dict[str, Any], field: str, message: str) -> None:
    space = SearchSpace.from_dict(DEMO)
    with pytest.raises(SpaceError) as info:
        space.check(params)
    assert info.value.field == field
    assert message in info.value.message


def test_check_nested_inactive_message() -> None:
    space = SearchSpace.from_dict(NESTED)
    with pytest.raises(SpaceError) as info:
        space.check({"lr": 0.01, "model": "cnn", "layers": 1, "kernel": 3, "dilation": True})
    assert (info.value.field, info.value.message) == ("dilation", "inactive: kernel is 3")
    assert space.contains({"lr": 0.01, "model": "cnn", "layers": 1, "kernel": 3})
    assert space.contains({"lr": 0.01, "model": "linear"})


# --- serialization ------------------------------------------------------------------


def test_when_round_trip_and_canonical_form() -> None:
    space = SearchSpace.from_dict(NESTED)
    dumped = space.to_dict()
    assert dumped["units"]["when"] == {"model": ["mlp"]}
    assert dumped["pad"]["when"] == {"kernel": [5], "model": ["cnn"]}  # sorted by parent
    assert "when" not in dumped["lr"]
    assert SearchSpace.from_dict(json.loads(json.dumps(dumped))) == space
    # The stored form is hashable and equal however the condition was written.
    a = IntParam("u", 1, 4, when={"model": "mlp"})  # type: ignore[arg-type]
    b = IntParam("u", 1, 4, when=(("model", ("mlp",)),))
    assert a == b and hash(a) == hash(b) and a.when == (("model", ("mlp",)),)
    assert CategoricalParam("k", (3, 5), when={"a": [1, 2]}).to_dict()["when"] == {"a": [1, 2]}  # type: ignore[arg-type]


# --- grid ---------------------------------------------------------------------------


def projected_product(space: SearchSpace, points: int) -> set[str]:
    axes = [p.grid(points) for p in space]
    return {
        key(space.project(dict(zip(space.names, c, strict=True)))) for c in itertools.product(*axes)
    }


@pytest.mark.parametrize("shuffle", [True, False])
def test_grid_visits_each_distinct_projected_point_once(shuffle: bool) -> None:
    space = SearchSpace.from_dict(NESTED)
    options = {"points": 3, "shuffle": shuffle}
    expected = projected_product(space, 3)
    history: list[TrialRecord] = []
    for _ in range(100):
        strategy = GridStrategy(space, history, seed=2, options=options)
        assert strategy.capacity == len(expected)
        batch = strategy.ask(7)
        if not batch:
            break
        history += [
            TrialRecord(len(history) + i, s.params, "completed", 1.0) for i, s in enumerate(batch)
        ]
    assert len(history) == len(expected)
    assert {key(dict(t.params)) for t in history} == expected
    assert all(space.contains(t.params) for t in history)
    assert GridStrategy(space, history, seed=2, options=options).exhausted


def test_grid_index_round_trip_and_rejects_inactive_keys() -> None:
    space = SearchSpace.from_dict(NESTED)
    strategy = GridStrategy(space, options={"points": 3, "shuffle": False})
    for i in range(strategy.size):
        assert strategy.index_of(strategy.point(i)) == i
    point = strategy.point(0)
    assert strategy.index_of({**point, "filters": 8}) is None
    mlp = next(
        strategy.point(i) for i in range(strategy.size) if strategy.point(i)["model"] == "mlp"
    )
    assert strategy.index_of({**mlp, "kernel": 3}) is None  # inactive parameter present
    assert strategy.index_of({k: v for k, v in mlp.items() if k != "units"}) is None


def test_grid_limit_counts_distinct_points_only() -> None:
    # Two branches of 5 floats each: the full product has 2 * 5**10 (about 19.5 million)
    # points, the distinct ones are 2 * 5**5 = 6,250.
    data: dict[str, Any] = {"model": ["a", "b"]}
    for branch in "ab":
        for i in range(5):
            data[f"{branch}{i}"] = {"type": "float", "low": 0, "high": 1, "when": {"model": branch}}
    assert GridStrategy(SearchSpace.from_dict(data)).capacity == 6_250
    data["c"] = {"type": "float", "low": 0, "high": 1}
    data["d"] = {"type": "float", "low": 0, "high": 1}
    data["e"] = {"type": "int", "low": 0, "high": 99}
    with pytest.raises(SpaceError) as info:
        GridStrategy(SearchSpace.from_dict(data), options={"points": 100})
    assert info.value.field == "space"
    assert f"more than {MAX_GRID_POINTS:,}" in info.value.message


def test_grid_too_many_branches() -> None:
    data: dict[str, Any] = {f"c{i}": ["a", "b"] for i in range(14)}
    data["x"] = {
        "type": "categorical",
        "choices": [1, 2],
        "when": {f"c{i}": "a" for i in range(14)},
    }
    with pytest.raises(SpaceError) as info:
        GridStrategy(SearchSpace.from_dict(data))
    assert info.value.field == "space"
    assert "branches" in info.value.message


def test_long_chains_of_conditions_need_no_recursion() -> None:
    # Each parameter active only while the previous one is "a": a legal, deep chain.
    def chain(n: int) -> SearchSpace:
        data: dict[str, Any] = {"c0": ["a", "b"]}
        for i in range(1, n):
            data[f"c{i}"] = {
                "type": "categorical",
                "choices": ["a", "b"],
                "when": {f"c{i - 1}": "a"},
            }
        return SearchSpace.from_dict(data)

    space = chain(2_000)
    deep = {f"c{i}": "a" for i in range(2_000)}
    assert space.contains(deep) and space.is_active("c1999", deep)
    assert space.active_names({"c0": "a", "c1": "b"}) == ["c0", "c1"]
    assert len(space.sample(np.random.default_rng(0))) >= 1
    assert GridStrategy(chain(200)).capacity == 201  # stop at the first "b", or all "a"


def test_grid_condition_on_one_is_not_met_by_true() -> None:
    space = SearchSpace.from_dict(
        {"c": [1, True], "x": {"type": "int", "low": 0, "high": 2, "when": {"c": 1}}}
    )
    points = [s.params for s in GridStrategy(space, options={"shuffle": False}).ask(10)]
    assert points == [{"c": 1, "x": 0}, {"c": 1, "x": 1}, {"c": 1, "x": 2}, {"c": True}]
