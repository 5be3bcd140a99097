"""Parameter types: type-aware membership, sampling distributions, grid values."""

from __future__ import annotations

import json

import numpy as np

from search.params import CategoricalParam, FloatParam, IntParam

# --- membership ---------------------------------------------------------------------


def test_float_contains() -> None:
    p = FloatParam("x", 0.0, 1.0)
    assert p.contains(0.0) and p.contains(1.0) and p.contains(1) and p.contains(np.float64(0.5))
    for bad in [True, 1.5, -0.1, float("nan"), "0.5", None, [0.5]]:
        assert not p.contains(bad), bad


def test_int_contains() -> None:
    p = IntParam("n", 1, 10, step=3)  # lattice 1, 4, 7, 10
    assert all(p.contains(v) for v in [1, 4, 7, 10, np.int64(4)])
    for bad in [2, 0, 13, 1.5, 4.0, True, "4", None]:
        assert not p.contains(bad), bad


def test_categorical_contains_does_not_confuse_bool_and_int() -> None:
    p = CategoricalParam("c", (1, "adam", None))
    assert p.contains(1) and p.contains(1.0) and p.contains("adam") and p.contains(None)
    assert not p.contains(True)
    q = CategoricalParam("c", (True, False))
    assert q.contains(True) and not q.contains(1) and not q.contains(0)
    assert not p.contains(["adam"]) and not p.contains("Adam")


# --- sampling -----------------------------------------------------------------------


def test_log_float_sampling_is_log_uniform() -> None:
    p = FloatParam("lr", 1e-6, 1.0, log=True)
    rng = np.random.default_rng(0)
    draws = np.array([p.sample(rng) for _ in range(2000)])
    assert draws.min() >= 1e-6 and draws.max() <= 1.0
    assert all(type(x) is float for x in draws.tolist())
    # Geometric mean 1e-3; a uniform sampler would give a median near 0.5.
    assert 10**-3.4 < np.median(draws) < 10**-2.6
    # Each decade gets about a sixth of the draws.
    decades = np.histogram(np.log10(draws), bins=6, range=(-6, 0))[0]
    assert decades.min() > 2000 / 6 * 0.7


def test_uniform_float_sampling_in_bounds() -> None:
    p = FloatParam("x", -2.0, 3.0)
    rng = np.random.default_rng(1)
    draws = [p.sample(rng) for _ in range(2000)]
    assert min(draws) >= -2.0 and max(draws) <= 3.0
    assert abs(float(np.mean(draws)) - 0.5) < 0.15


def test_int_sampling_stays_on_the_step_lattice() -> None:
    p = IntParam("n", 3, 50, step=4)  # 3, 7, ..., 47
    rng = np.random.default_rng(2)
    draws = [p.sample(rng) for _ in range(2000)]
    assert all(type(v) is int and (v - 3) % 4 == 0 and 3 <= v <= 47 for v in draws)
    assert set(draws) == set(range(3, 48, 4))


def test_log_int_sampling_median_near_geometric_mean() -> None:
    p = IntParam("units", 1, 1024, log=True)
    rng = np.random.default_rng(3)
    draws = [p.sample(rng) for _ in range(2000)]
    assert min(draws) >= 1 and max(draws) <= 1024
    assert 20 <= np.median(draws) <= 50  # geometric mean 32; uniform would be ~512


def test_log_int_with_step_on_lattice() -> None:
    p = IntParam("units", 8, 512, log=True, step=8)
    rng = np.random.default_rng(4)
    draws = [p.sample(rng) for _ in range(2000)]
    assert all(v % 8 == 0 and 8 <= v <= 512 for v in draws)


def test_categorical_sampling_returns_the_choices() -> None:
    p = CategoricalParam("c", ("a", True, None, 2))
    rng = np.random.default_rng(5)
    draws = [p.sample(rng) for _ in range(400)]
    assert {json.dumps(d) for d in draws} == {'"a"', "true", "null", "2"}


# --- per-dimension grids ------------------------------------------------------------


def test_float_grid_includes_both_ends() -> None:
    assert FloatParam("x", 0.0, 1.0).grid(5) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_log_float_grid_is_geometric() -> None:
    values = FloatParam("lr", 1e-4, 1.0, log=True).grid(5)
    assert values[0] == 1e-4 and values[-1] == 1.0
    assert np.allclose(values, [1e-4, 1e-3, 1e-2, 1e-1, 1.0], rtol=1e-12)


def test_int_grid_lattice_and_spread() -> None:
    p = IntParam("n", 0, 10, step=3)
    assert p.grid(5) == [0, 3, 6, 9]  # 4 lattice values <= 5 points: all of them
    assert p.grid(2) == [0, 9]
    assert IntParam("n", 1, 1000, log=True).grid(4) == [1, 10, 100, 1000]
    spread = IntParam("n", 0, 100).grid(5)
    assert spread == [0, 25, 50, 75, 100]


def test_int_log_grid_deduplicates() -> None:
    values = IntParam("n", 1, 12, log=True).grid(11)
    assert len(values) == len(set(values)) and values[0] == 1 and values[-1] == 12
    assert values == sorted(values)


def test_categorical_grid_is_all_choices() -> None:
    assert CategoricalParam("c", ("a", "b", "c")).grid(2) == ["a", "b", "c"]
