"""Evolution: initial population, asynchronous breeding, generations, replacement with
elitism, option checks, conditional spaces, and a quality check against random search."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from search import OptionError, SearchSpace, Suggestion, TrialRecord, make_strategy
from search.evolution import EvolutionStrategy, _mutate_gene

SPACE = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "units": {"type": "int", "low": 16, "high": 512, "step": 16},
        "layers": {"type": "int", "low": 1, "high": 4},
        "act": ["relu", "tanh", "gelu"],
    }
)


def smooth(params: Mapping[str, Any]) -> float:
    """A smooth bowl over the mixed space (minimum near lr=1e-3, dropout=0.1, ...)."""
    return (
        (math.log10(params["lr"]) + 3) ** 2
        + 10 * (params["dropout"] - 0.1) ** 2
        + ((params["units"] - 200) / 100) ** 2
        + 0.5 * (params["layers"] - 2) ** 2
        + (0.0 if params["act"] == "gelu" else 0.5)
    )


def completed(params: Sequence[Mapping[str, Any]], values: Sequence[float]) -> list[TrialRecord]:
    return [
        TrialRecord(i, dict(p), "completed", v, info={"generation": 0, "parents": []})
        for i, (p, v) in enumerate(zip(params, values, strict=True))
    ]


def points(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(n)]


def loop(
    name: str, budget: int, seed: int, options: dict[str, Any] | None = None
) -> list[TrialRecord]:
    """Drive a strategy the way the server does: rebuild, ask(1), evaluate, record."""
    history: list[TrialRecord] = []
    for _ in range(budget):
        (s,) = make_strategy(name, SPACE, history, seed=seed, options=options).ask(1)
        history.append(
            TrialRecord(len(history), s.params, "completed", smooth(s.params), {}, s.info)
        )
    return history


def test_beats_random_on_a_smooth_function() -> None:
    def best(name: str, seed: int) -> float:
        return min(t.value for t in loop(name, 100, seed))  # type: ignore[type-var]

    seeds = range(7)
    evolution = statistics.median(best("evolution", s) for s in seeds)
    random = statistics.median(best("random", s) for s in seeds)
    assert evolution < random


def test_initial_population_is_random_generation_zero() -> None:
    strategy = EvolutionStrategy(SPACE, seed=1, options={"population_size": 5})
    first = strategy.ask(5)
    assert all(s.info == {"generation": 0, "parents": []} for s in first)
    assert len({repr(sorted(s.params.items())) for s in first}) == 5
    # Nothing has completed yet: there is no one to breed from, so it stays random.
    assert strategy.ask(2)[0].info["generation"] == 0


def test_in_flight_trials_count_towards_the_initial_population() -> None:
    p = points(4)
    history = [
        *completed(p[:2], [1.0, 2.0]),
        TrialRecord(2, p[2], "running", info={"generation": 0, "parents": []}),
        TrialRecord(3, p[3], "queued", info={"generation": 0, "parents": []}),
    ]
    children = EvolutionStrategy(SPACE, history, options={"population_size": 4}).ask(3)
    for child in children:  # breeds at once from the two completed, no waiting
        assert child.info["generation"] == 1
        assert set(child.info["parents"]) <= {0, 1}
        assert SPACE.contains(child.params)
    # One slot of the initial population is free: that one is random, then children.
    out = EvolutionStrategy(SPACE, history[:3], options={"population_size": 4}).ask(3)
    assert [s.info["generation"] for s in out] == [0, 1, 1]


def test_failed_trials_are_replaced_and_never_parents() -> None:
    p = points(6)
    history = [
        TrialRecord(0, p[0], "completed", 5.0),
        TrialRecord(1, p[1], "failed", None),
        TrialRecord(2, p[2], "pruned", -100.0, {1: -100.0}),
        TrialRecord(3, p[3], "stopped", None),
        TrialRecord(4, p[4], "completed", float("nan")),
        TrialRecord(5, {**p[5], "lr": 10.0}, "completed", -1000.0),  # outside the space
        TrialRecord(6, p[5], "completed", 3.0),
    ]
    strategy = EvolutionStrategy(SPACE, history, options={"population_size": 3})
    assert [t.number for t in strategy.population] == [6, 0]
    out = strategy.ask(10)
    assert out[0].info["generation"] == 0  # 2 valid members of 3: one random to fill
    for s in out[1:]:
        assert set(s.info["parents"]) <= {0, 6}


def test_child_generation_is_one_more_than_its_oldest_parent() -> None:
    p = points(2)
    history = [
        TrialRecord(0, p[0], "completed", 1.0, info={"generation": 3, "parents": [9]}),
        TrialRecord(1, p[1], "completed", 2.0, info={"generation": 1, "parents": [7]}),
    ]
    options = {"population_size": 2, "crossover_rate": 1.0}
    for s in EvolutionStrategy(SPACE, history, options=options).ask(5):
        assert sorted(s.info["parents"]) == [0, 1]
        assert s.info["generation"] == 4
    clones = EvolutionStrategy(SPACE, history, options={**options, "crossover_rate": 0.0})
    for s in clones.ask(10):
        (parent,) = s.info["parents"]
        assert s.info["generation"] == {0: 4, 1: 2}[parent]


def test_deterministic_and_rebuilds_continue() -> None:
    history = completed(points(25), [float(i) for i in range(25)])
    a = EvolutionStrategy(SPACE, history, seed=4).ask(6)
    b = EvolutionStrategy(SPACE, history, seed=4).ask(6)
    assert a == b
    assert a != EvolutionStrategy(SPACE, history, seed=5).ask(6)
    one = EvolutionStrategy(SPACE, history, seed=4)
    assert one.ask(3) + one.ask(3) == a  # one instance continues its stream
    grown = [*history, TrialRecord(25, a[0].params, "running", info=a[0].info)]
    assert EvolutionStrategy(SPACE, grown, seed=4).ask(1)[0] != a[1]


def test_population_keeps_the_best_and_replaces_the_worst() -> None:
    history = loop("evolution", 60, seed=3, options={"population_size": 8})
    for k in range(8, 61, 4):
        strategy = EvolutionStrategy(SPACE, history[:k], seed=3, options={"population_size": 8})
        ranked = sorted(history[:k], key=lambda t: (t.value, t.number))
        assert strategy.population == ranked[:8]  # the best always stays; the worst goes


def test_maximize_flips_the_fitness() -> None:
    history = completed(points(6), [1.0, 6.0, 2.0, 5.0, 3.0, 4.0])
    strategy = EvolutionStrategy(
        SPACE, history, direction="maximize", options={"population_size": 3}
    )
    assert [t.number for t in strategy.population] == [1, 3, 5]


def test_aging_retires_the_oldest_but_keeps_the_elite() -> None:
    history = completed(points(8), [0.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0])
    options = {"population_size": 3, "replacement": "oldest", "elite": 1}
    strategy = EvolutionStrategy(SPACE, history, options=options)
    # Trial 0 is the best and survives; the others are the youngest.
    assert sorted(t.number for t in strategy.population) == [0, 6, 7]
    no_elite = EvolutionStrategy(SPACE, history, options={**options, "elite": 0})
    assert sorted(t.number for t in no_elite.population) == [5, 6, 7]


def test_children_avoid_known_points_in_a_small_space() -> None:
    space = SearchSpace.from_dict({"a": ["x", "y", "z"], "b": {"type": "int", "low": 0, "high": 3}})
    history = [
        TrialRecord(0, {"a": "x", "b": 0}, "completed", 1.0),
        TrialRecord(1, {"a": "y", "b": 1}, "completed", 2.0),
    ]
    out = EvolutionStrategy(space, history, options={"population_size": 2}).ask(6)
    keys = [(s.params["a"], s.params["b"]) for s in out]
    assert len(set(keys)) == 6 and not {("x", 0), ("y", 1)} & set(keys)


@pytest.mark.parametrize("spec", [{"type": "int", "low": 1, "high": 3}, ["a", "b"]])
def test_a_mutation_always_changes_a_coarse_gene(spec: Any) -> None:
    param = SearchSpace.from_dict({"g": spec})["g"]
    rng = np.random.default_rng(0)
    for value in param.grid(3):
        for _ in range(20):
            mutated = _mutate_gene(param, value, 0.01, rng)
            assert mutated != value and param.contains(mutated)


def test_mutations_stay_in_the_domain_on_log_and_step_lattices() -> None:
    rng = np.random.default_rng(0)
    space = SearchSpace.from_dict(
        {
            "lr": {"type": "float", "low": 1e-6, "high": 1.0, "log": True},
            "units": {"type": "int", "low": 8, "high": 1000, "step": 8, "log": False},
            "batch": {"type": "int", "low": 2, "high": 4096, "log": True},
        }
    )
    for param in space:
        value = param.sample(rng)
        for _ in range(300):
            value = _mutate_gene(param, value, 0.5, rng)
            assert param.contains(value) and type(value) is (
                float if param.kind == "float" else int
            )


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"population_size": 1}, "options.population_size"),
        ({"population_size": 2.0}, "options.population_size"),
        ({"population_size": True}, "options.population_size"),
        ({"tournament_size": 0}, "options.tournament_size"),
        ({"tournament_size": 2.5}, "options.tournament_size"),
        ({"crossover_rate": 1.5}, "options.crossover_rate"),
        ({"crossover_rate": "high"}, "options.crossover_rate"),
        ({"mutation_rate": 0}, "options.mutation_rate"),
        ({"mutation_rate": float("nan")}, "options.mutation_rate"),
        ({"mutation_scale": -0.1}, "options.mutation_scale"),
        ({"elite": -1}, "options.elite"),
        ({"population_size": 4, "elite": 5}, "options.elite"),
        ({"selection": "roulette"}, "options.selection"),
        ({"replacement": "random"}, "options.replacement"),
        ({"generations": 3}, "options.generations"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(OptionError) as info:
        EvolutionStrategy.validate_options(options)
    assert info.value.field == field


def test_default_options() -> None:
    assert EvolutionStrategy.validate_options(None) == {
        "population_size": 20,
        "tournament_size": 3,
        "selection": "tournament",
        "crossover_rate": 0.5,
        "mutation_rate": None,
        "mutation_scale": 0.1,
        "elite": 1,
        "replacement": "worst",
    }


def test_rank_selection_works() -> None:
    history = loop("evolution", 40, seed=2, options={"population_size": 6, "selection": "rank"})
    assert max(t.info["generation"] for t in history) >= 2


CONDITIONAL = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "model": ["mlp", "cnn", "linear"],
    "units": {"type": "int", "low": 16, "high": 256, "log": True, "when": {"model": "mlp"}},
    "filters": {"type": "int", "low": 8, "high": 64, "step": 8, "when": {"model": "cnn"}},
    "kernel": {"type": "categorical", "choices": [3, 5], "when": {"model": "cnn"}},
    "dilation": {"type": "categorical", "choices": [1, 2], "when": {"kernel": 5}},
}


def conditional_space() -> SearchSpace:
    if not hasattr(SearchSpace, "is_active"):
        pytest.skip("this search space has no conditional parameters")
    return SearchSpace.from_dict(CONDITIONAL)


def test_conditional_children_are_valid_and_explore_every_branch() -> None:
    space = conditional_space()
    history: list[TrialRecord] = []
    branches = set()
    for _ in range(80):
        strategy = EvolutionStrategy(space, history, seed=1, options={"population_size": 6})
        (s,) = strategy.ask(1)
        assert space.contains(s.params), s.params
        branches.add(tuple(sorted(s.params)))
        value = s.params["lr"] + (0.1 if s.params["model"] == "linear" else 0.0)
        history.append(TrialRecord(len(history), s.params, "completed", value, info=s.info))
    assert len(branches) >= 3


def test_genes_that_become_active_come_from_a_parent_that_has_them() -> None:
    space = conditional_space()
    mlp = {"lr": 0.01, "model": "mlp", "units": 64}
    cnn = {"lr": 0.1, "model": "cnn", "filters": 16, "kernel": 5, "dilation": 2}
    history = [TrialRecord(0, mlp, "completed", 1.0), TrialRecord(1, cnn, "completed", 2.0)]
    strategy = EvolutionStrategy(space, history, options={"population_size": 2})
    # The child took model=cnn but the rest from the mlp parent: the cnn genes are
    # inherited, units (now inactive) is dropped.
    child = strategy._repair({"lr": 0.01, "model": "cnn", "units": 64}, list(history))
    assert child == {"lr": 0.01, "model": "cnn", "filters": 16, "kernel": 5, "dilation": 2}
    # No parent has them: sampled, valid.
    alone = strategy._repair({"lr": 0.01, "model": "cnn"}, [history[0]])
    assert space.contains(alone) and alone["model"] == "cnn"


def test_suggestions_are_plain_suggestions() -> None:
    for s in EvolutionStrategy(SPACE, completed(points(20), [1.0] * 20)).ask(5):
        assert isinstance(s, Suggestion)
        assert type(s.params["units"]) is int and type(s.params["lr"]) is float
