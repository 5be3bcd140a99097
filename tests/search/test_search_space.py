"""Search-space validation (one rule per test, exact field), membership and serialization."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from search.params import CategoricalParam, FloatParam, IntParam
from search.space import MAX_PARAMS, SearchSpace, SpaceError, param_from_spec


def field_of(data: Any) -> str:
    """Parse ``data`` as a space and return the field of the SpaceError it raises."""
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict(data)
    err = info.value
    assert str(err) == f"{err.field}: {err.message}"
    return err.field


# --- validation: one rule per test, asserting the exact field ---------------------


def test_space_must_be_a_mapping() -> None:
    assert field_of([("lr", {"type": "float", "low": 0, "high": 1})]) == "space"


def test_empty_space_rejected() -> None:
    assert field_of({}) == "space"
    with pytest.raises(SpaceError) as info:
        SearchSpace([])
    assert info.value.field == "space"


def test_too_many_params_rejected() -> None:
    data = {f"p{i}": ["a", "b"] for i in range(MAX_PARAMS + 1)}
    assert field_of(data) == "space"


@pytest.mark.parametrize("name", ["1abc", "a b", "lr!", "-x"])
def test_bad_param_name_field_is_the_name(name: str) -> None:
    assert field_of({name: ["a"]}) == name


def test_empty_param_name_rejected() -> None:
    assert field_of({"": ["a"]}) == "space"


def test_non_string_param_name_rejected() -> None:
    assert field_of({3: ["a"]}) == "space"


def test_duplicate_param_names_rejected() -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace([FloatParam("x", 0, 1), IntParam("x", 0, 3)])
    assert info.value.field == "x"


def test_spec_must_be_mapping_or_list() -> None:
    assert field_of({"lr": 0.1}) == "lr"


def test_missing_type_rejected() -> None:
    assert field_of({"lr": {"low": 0, "high": 1}}) == "lr.type"


@pytest.mark.parametrize("kind", ["uniform", "", None, 3])
def test_unknown_type_rejected(kind: Any) -> None:
    assert field_of({"lr": {"type": kind, "low": 0, "high": 1}}) == "lr.type"


def test_unknown_key_rejected_with_allowed_keys() -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict({"lr": {"type": "float", "low": 0, "high": 1, "lgo": True}})
    assert info.value.field == "lr.lgo"
    assert "unknown key" in info.value.message
    assert "high, log, low, type" in info.value.message


def test_step_is_not_a_float_key() -> None:
    assert field_of({"lr": {"type": "float", "low": 0, "high": 1, "step": 0.1}}) == "lr.step"


@pytest.mark.parametrize("missing", ["low", "high"])
def test_missing_bound_rejected(missing: str) -> None:
    spec = {"type": "float", "low": 0.0, "high": 1.0}
    del spec[missing]
    assert field_of({"lr": spec}) == f"lr.{missing}"


def test_missing_choices_rejected() -> None:
    assert field_of({"opt": {"type": "categorical"}}) == "opt.choices"


@pytest.mark.parametrize(
    ("low", "high", "field"),
    [
        ("0", 1, "lr.low"),
        (True, 1, "lr.low"),
        (None, 1, "lr.low"),
        (0, float("nan"), "lr.high"),
        (float("-inf"), 1, "lr.low"),
        (0, float("inf"), "lr.high"),
    ],
)
def test_float_bounds_must_be_finite_numbers(low: Any, high: Any, field: str) -> None:
    assert field_of({"lr": {"type": "float", "low": low, "high": high}}) == field


@pytest.mark.parametrize(("low", "high"), [(1.0, 1.0), (2.0, 1.0)])
def test_float_low_must_be_less_than_high(low: float, high: float) -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict({"lr": {"type": "float", "low": low, "high": high}})
    assert info.value.field == "lr.low"
    assert "low must be less than high" in info.value.message


def test_float_range_must_not_overflow() -> None:
    assert field_of({"lr": {"type": "float", "low": -1e308, "high": 1e308}}) == "lr.high"


@pytest.mark.parametrize("low", [0.0, -1.0])
def test_log_requires_positive_low(low: float) -> None:
    assert field_of({"lr": {"type": "float", "low": low, "high": 1, "log": True}}) == "lr.low"
    assert field_of({"n": {"type": "int", "low": int(low), "high": 8, "log": True}}) == "n.low"


@pytest.mark.parametrize("log", ["true", 1, None])
def test_log_must_be_bool(log: Any) -> None:
    assert field_of({"lr": {"type": "float", "low": 0.1, "high": 1, "log": log}}) == "lr.log"


@pytest.mark.parametrize(("low", "high", "field"), [(2.5, 4, "n.low"), (1, 4.5, "n.high")])
def test_int_bounds_must_be_integers(low: Any, high: Any, field: str) -> None:
    assert field_of({"n": {"type": "int", "low": low, "high": high}}) == field


def test_int_bounds_accept_integral_floats() -> None:
    param = SearchSpace.from_dict({"n": {"type": "int", "low": 2.0, "high": 4.0}})["n"]
    assert param == IntParam("n", 2, 4)
    assert type(param.low) is int and type(param.high) is int


def test_int_bounds_must_be_json_safe() -> None:
    assert field_of({"n": {"type": "int", "low": 0, "high": 2**53 + 1}}) == "n.high"


@pytest.mark.parametrize(("low", "high"), [(3, 3), (4, 3)])
def test_int_low_must_be_less_than_high(low: int, high: int) -> None:
    assert field_of({"n": {"type": "int", "low": low, "high": high}}) == "n.low"


@pytest.mark.parametrize("step", [0, -2, 1.5, True, "2"])
def test_int_step_must_be_positive_integer(step: Any) -> None:
    assert field_of({"n": {"type": "int", "low": 0, "high": 8, "step": step}}) == "n.step"


@pytest.mark.parametrize(
    "choices",
    [[], "adam", {"a": 1}, ["a", "a"], [1, 1.0], ["a", ["nested"]], [{"k": 1}], [float("nan")]],
)
def test_bad_choices_rejected(choices: Any) -> None:
    assert field_of({"opt": {"type": "categorical", "choices": choices}}) == "opt.choices"


def test_empty_shorthand_list_rejected() -> None:
    assert field_of({"opt": []}) == "opt.choices"


def test_true_and_one_are_distinct_choices() -> None:
    param = CategoricalParam("c", (True, 1, None, "1", 1.5))
    assert len(param.choices) == 5


def test_direct_construction_validates_too() -> None:
    with pytest.raises(SpaceError) as info:
        FloatParam("lr", 1.0, 0.5)
    assert info.value.field == "lr.low"


# --- the whole space ---------------------------------------------------------------


SPACE = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
        "layers": {"type": "int", "low": 1, "high": 4},
        "opt": ["adam", "sgd"],
    }
)


def test_space_contains_requires_exact_keys() -> None:
    good = {"lr": 0.01, "layers": 2, "opt": "sgd"}
    assert SPACE.contains(good)
    assert not SPACE.contains({"lr": 0.01, "layers": 2})
    assert not SPACE.contains({**good, "extra": 1})
    assert not SPACE.contains({**good, "lr": 1.0})
    assert not SPACE.contains("lr=0.01")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lr": 0.01, "layers": 2}, "opt"),
        ({"lr": 0.01, "layers": 2, "opt": "sgd", "momentum": 0.9}, "momentum"),
        ({"lr": 0.01, "layers": 2.5, "opt": "sgd"}, "layers"),
        ({"lr": 0.5, "layers": 2, "opt": "sgd"}, "lr"),
        (["lr"], "params"),
    ],
)
def test_space_check_names_offending_param(params: Any, field: str) -> None:
    with pytest.raises(SpaceError) as info:
        SPACE.check(params)
    assert info.value.field == field


def test_space_sample_is_reproducible_and_inside() -> None:
    a = [SPACE.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [SPACE.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    assert all(SPACE.contains(s) for s in a)
    assert list(a[0]) == ["lr", "layers", "opt"]


# --- serialization ------------------------------------------------------------------


def test_round_trip_to_dict_from_dict() -> None:
    data = {
        "lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
        "dropout": {"type": "float", "low": 0, "high": 0.5},
        "layers": {"type": "int", "low": 1, "high": 4},
        "units": {"type": "int", "low": 16, "high": 256, "step": 16, "log": True},
        "opt": {"type": "categorical", "choices": ["adam", "sgd"]},
        "act": ["relu", True, None, 3],
    }
    space = SearchSpace.from_dict(data)
    dumped = space.to_dict()
    assert dumped["lr"] == {"type": "float", "low": 1e-4, "high": 0.1, "log": True}
    assert dumped["layers"] == {"type": "int", "low": 1, "high": 4, "step": 1, "log": False}
    assert dumped["act"] == {"type": "categorical", "choices": ["relu", True, None, 3]}
    assert SearchSpace.from_dict(json.loads(json.dumps(dumped))) == space
    assert space.names == ("lr", "dropout", "layers", "units", "opt", "act")
    assert len(space) == 6 and [p.name for p in space] == list(space.names)
    assert space["units"] == IntParam("units", 16, 256, log=True, step=16)
    assert isinstance(space["dropout"], FloatParam) and space["dropout"].low == 0.0
    with pytest.raises(KeyError):
        space["missing"]


def test_param_from_spec_shorthand() -> None:
    assert param_from_spec("c", ["a", "b"]) == CategoricalParam("c", ("a", "b"))


def test_float_param_normalizes_int_bounds() -> None:
    p = FloatParam("x", 0, 1)
    assert type(p.low) is float and p == FloatParam("x", 0.0, 1.0)
    assert math.isclose(p.sample(np.random.default_rng(0)), p.sample(np.random.default_rng(0)))
