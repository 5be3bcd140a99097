"""``pbt``: segments, exploit and explore, lineage, and what the history can hold.

The shared contract (``test_strategy_contract.py``) covers it as every strategy; these
tests drive it the way the server does, with each segment's ``info`` kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from search import OptionError, SearchSpace, TrialRecord, make_strategy, validate_strategy
from search.params import IntParam
from search.pbt import PbtStrategy, _perturb_int, lineage

SPACE = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
        "momentum": {"type": "float", "low": 0.0, "high": 0.99},
        "batch_size": {"type": "int", "low": 8, "high": 256, "log": True},
        "units": {"type": "int", "low": 16, "high": 256},
    }
)
OPTIONS = {"max_budget": 12, "interval": 3, "population_size": 6}


def score(params: Mapping[str, Any], budget: int) -> float:
    """A loss falling with epochs, lowest near lr 0.01 (deterministic)."""
    return (math.log10(params["lr"]) + 2.0) ** 2 + 10.0 / budget


def run(
    seed: int = 3,
    *,
    fail: Callable[[int], bool] = lambda number: False,
    options: Mapping[str, Any] = OPTIONS,
    space: SearchSpace = SPACE,
    objective: Callable[[Mapping[str, Any], int], float] = score,
    batch: int = 2,
    direction: str = "minimize",
) -> list[TrialRecord]:
    """A server-like loop: ask for ``batch`` segments, complete them, repeat."""
    history: list[TrialRecord] = []
    for _ in range(200):
        strategy = make_strategy(
            "pbt", space, history, seed=seed, options=dict(options), direction=direction
        )
        if strategy.exhausted:
            return history
        out = strategy.ask(batch)
        assert out, "a strategy that is not exhausted and has nothing in flight must ask"
        for s in out:
            number = len(history)
            budget = s.info["budget"]
            if fail(number):
                history.append(TrialRecord(number, s.params, "failed", info=s.info))
            else:
                value = objective(s.params, budget)
                history.append(
                    TrialRecord(number, s.params, "completed", value, {budget: value}, info=s.info)
                )
    raise AssertionError("the population never finished")


def test_a_full_run_trains_every_member_to_the_full_budget() -> None:
    history = run()
    members = {t.info["member"] for t in history}
    assert members == set(range(6))
    # A member that copies one ahead of it takes over its epochs too, so a run holds at
    # most population x generations segments, and every member ends at the full budget.
    assert 6 < len(history) <= 6 * 4
    for k in members:
        mine = [t for t in history if t.info["member"] == k]
        assert mine[0].info["generation"] == 0 and mine[-1].info["budget"] == 12
        assert [t.info["budget"] for t in mine] == sorted(t.info["budget"] for t in mine)
    for t in history:
        if t.info["generation"] == 0:
            assert "parent" not in t.info and t.info["source"] == "random"
        else:
            parent = history[t.info["parent"]]
            assert parent.info["budget"] == t.info["budget"] - 3  # continues where it ended
            assert parent.status == "completed"


def test_bottom_members_copy_top_ones_and_perturb_only_mutable_parameters() -> None:
    history = run()
    exploits = [t for t in history if t.info.get("source") == "exploit"]
    assert exploits, "nobody was ever in the bottom quantile"
    for t in exploits:
        parent = history[t.info["parent"]]
        assert parent.info["member"] == t.info["copied_from"] != t.info["member"]
        # Architecture stays the donor's: the copied weights must fit.
        assert t.params["units"] == parent.params["units"]
        assert t.params != parent.params
    for t in history:
        if t.info.get("source") == "continue":
            parent = history[t.info["parent"]]
            assert parent.info["member"] == t.info["member"]
            assert t.params == parent.params


def test_the_population_moves_toward_the_better_region() -> None:
    history = run(seed=1, options={**OPTIONS, "population_size": 8, "max_budget": 30})
    first = sorted(score(t.params, 1) for t in history if t.info["generation"] == 0)
    last_gen = max(t.info["generation"] for t in history)
    last = sorted(score(t.params, 1) for t in history if t.info["generation"] == last_gen)
    # The median member of the last generation beats the median of the first.
    assert last[len(last) // 2] < first[len(first) // 2]


def test_same_seed_same_run_and_seeds_differ() -> None:
    assert run(seed=5) == run(seed=5)
    assert run(seed=5) != run(seed=6)


def test_a_failed_segment_makes_its_member_copy_a_top_member() -> None:
    history = run(fail=lambda number: number in (7, 8))
    for number in (7, 8):
        failed = history[number]
        k = failed.info["member"]
        after = [t for t in history[number + 1 :] if t.info["member"] == k]
        nxt = after[0]
        assert nxt.info["source"] == "exploit"
        assert history[nxt.info["parent"]].status == "completed"
    # Every member still ends at the full budget.
    ends = {t.info["member"] for t in history if t.info["budget"] == 12 and t.status == "completed"}
    assert ends == set(range(6))


def test_a_failure_before_anything_completed_starts_the_member_afresh() -> None:
    space = SPACE
    first = make_strategy("pbt", space, [], seed=0, options=OPTIONS).ask(6)
    history = [TrialRecord(i, s.params, "failed", info=s.info) for i, s in enumerate(first)]
    again = make_strategy("pbt", space, history, seed=0, options=OPTIONS).ask(6)
    assert len(again) == 6
    assert all(s.info["generation"] == 0 and "parent" not in s.info for s in again)


def test_members_in_flight_get_no_segment_and_ask_may_return_fewer() -> None:
    strategy = make_strategy("pbt", SPACE, [], seed=0, options=OPTIONS)
    assert len(strategy.ask(10)) == 6  # the population, no more
    assert strategy.ask(3) == []  # all six are in flight (asked by this instance)
    first = make_strategy("pbt", SPACE, [], seed=0, options=OPTIONS).ask(6)
    running = [TrialRecord(i, s.params, "running", info=s.info) for i, s in enumerate(first)]
    assert make_strategy("pbt", SPACE, running, seed=0, options=OPTIONS).ask(4) == []


def test_ranking_uses_the_latest_report_of_members_in_training() -> None:
    """A member still training is ranked by its newest intermediate value."""
    opts = {**OPTIONS, "population_size": 4, "quantile": 0.25}
    first = make_strategy("pbt", SPACE, [], seed=0, options=opts).ask(4)
    history = [
        TrialRecord(0, first[0].params, "completed", 5.0, {3: 5.0}, info=first[0].info),
        TrialRecord(1, first[1].params, "running", None, {1: 0.1, 2: 0.05}, info=first[1].info),
        TrialRecord(2, first[2].params, "running", None, {1: 2.0}, info=first[2].info),
        TrialRecord(3, first[3].params, "running", None, {1: 3.0}, info=first[3].info),
    ]
    (nxt,) = make_strategy("pbt", SPACE, history, seed=0, options=opts).ask(1)
    # Member 0 is worst (5.0): it copies the best member that completed a segment, which
    # is only itself here, so it continues from its own checkpoint with new params.
    assert nxt.info["member"] == 0 and nxt.info["source"] == "exploit"
    assert nxt.info["parent"] == 0


def test_maximize_moves_toward_the_higher_values() -> None:
    def accuracy(params: Mapping[str, Any], budget: int) -> float:
        return -score(params, budget)

    opts = {**OPTIONS, "population_size": 8, "max_budget": 30}
    history = run(seed=1, objective=accuracy, options=opts, direction="maximize")
    first = sorted(accuracy(t.params, 1) for t in history if t.info["generation"] == 0)
    last_gen = max(t.info["generation"] for t in history)
    last = sorted(accuracy(t.params, 1) for t in history if t.info["generation"] == last_gen)
    assert last[len(last) // 2] > first[len(first) // 2]


def test_conditional_mutable_parent_keeps_points_in_the_space() -> None:
    space = SearchSpace.from_dict(
        {
            "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
            "opt": ["sgd", "adam"],
            "momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"opt": "sgd"}},
        }
    )
    opts = {**OPTIONS, "mutable": ["lr", "opt", "momentum"], "resample_probability": 0.5}
    history = run(space=space, options=opts)
    assert all(space.contains(t.params) for t in history)
    assert {t.params["opt"] for t in history} == {"sgd", "adam"}


def test_options_are_validated_with_the_field_named() -> None:
    cases = [
        ({"max_budget": 9, "population_size": 1}, "options.population_size"),
        ({"max_budget": 9, "interval": 0}, "options.interval"),
        ({"max_budget": 9, "quantile": 0.7}, "options.quantile"),
        ({"max_budget": 9, "quantile": 0}, "options.quantile"),
        ({"max_budget": 9, "perturb_factor": 1.0}, "options.perturb_factor"),
        ({"max_budget": 9, "resample_probability": -0.1}, "options.resample_probability"),
        ({"max_budget": 9, "mutable": "lr"}, "options.mutable"),
        ({"max_budget": 9, "mutable": ["lr", "nope"]}, "options.mutable"),
        ({}, "options.max_budget"),
    ]
    for options, fieldname in cases:
        with pytest.raises(OptionError) as info:
            make_strategy("pbt", SPACE, options=options)
        assert info.value.field == fieldname, options
    # The study's epochs are the default budget; the interval defaults to an eighth.
    filled = validate_strategy("pbt", {}, SPACE, max_epochs=40)
    assert filled["max_budget"] == 40 and filled["interval"] == 5


def test_default_mutable_is_the_training_hyperparameters() -> None:
    strategy = make_strategy("pbt", SPACE, options={"max_budget": 4})
    assert strategy.options["mutable"] == ["lr", "momentum", "batch_size"]
    other = SearchSpace.from_dict({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    assert make_strategy("pbt", other, options={"max_budget": 4}).options["mutable"] == ["x"]


def test_perturbed_ints_always_move_and_stay_on_the_lattice() -> None:
    p = IntParam("n", low=2, high=10, step=2)
    assert _perturb_int(p, 4, 1.2, True) == 6  # 4.8 rounds back onto 4: one step up
    assert _perturb_int(p, 10, 1.2, True) == 8  # past the top: reflected
    assert _perturb_int(p, 2, 0.8, False) == 4  # below the bottom: reflected
    pair = IntParam("n", low=3, high=4)
    assert _perturb_int(pair, 4, 1.2, True) == 3


def test_lineage_follows_parents_across_members() -> None:
    history = run()
    best = min((t for t in history if t.info["budget"] == 12), key=lambda t: (t.value, t.number))
    chain = lineage(history, best.number)
    assert chain[-1] == best and chain[0].info["generation"] == 0
    assert [t.info["budget"] for t in chain] == [3, 6, 9, 12]
    for child, parent in zip(chain[1:], chain, strict=False):
        assert child.info["parent"] == parent.number
    assert lineage(history, 10_000) == []


def test_pbt_is_registered() -> None:
    assert make_strategy("pbt", SPACE, options={"max_budget": 3}).name == PbtStrategy.name
