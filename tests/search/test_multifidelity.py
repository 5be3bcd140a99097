"""Hyperband, ASHA and the median stopping rule, by their logic."""

from __future__ import annotations

import math
import statistics

import pytest

from search import OptionError, SearchSpace, TrialRecord, make_strategy, validate_strategy
from search.fidelity import budget_ladder
from search.hyperband import bracket_plan
from search.median import MedianRule

SPACE = SearchSpace.from_dict({"x": {"type": "float", "low": 0.0, "high": 1.0}})


def _complete(history: list[TrialRecord], suggestions, value_of) -> None:
    for s in suggestions:
        history.append(
            TrialRecord(
                number=len(history),
                params=s.params,
                status="completed",
                value=value_of(s.params),
                info=s.info,
            )
        )


def _queue(history: list[TrialRecord], suggestions) -> list[TrialRecord]:
    start = len(history)
    for i, s in enumerate(suggestions):
        history.append(
            TrialRecord(number=start + i, params=s.params, status="running", info=s.info)
        )
    return history[start:]


def test_budget_ladder_and_bracket_plans_follow_the_papers() -> None:
    assert budget_ladder(1, 27, 3) == [1, 3, 9, 27]
    assert budget_ladder(1, 15, 3) == [1, 3, 9, 15]
    # Li et al. (2017), Table 1: R = 81, eta = 3
    assert [bracket_plan(s, 4, 81, 3) for s in (4, 3, 2, 1, 0)] == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)],
    ]


@pytest.mark.parametrize("name", ["hyperband", "asha"])
@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_budget": 9, "eta": 1.5}, "strategy.options.eta"),
        ({"max_budget": 2, "min_budget": 3}, "strategy.options.max_budget"),
        ({"max_budget": 0}, "strategy.options.max_budget"),
        ({"max_budget": 9, "bogus": 1}, "strategy.options.bogus"),
        ({"max_budget": 9, "sampler": "tpe"}, "strategy.options.sampler"),
    ],
)
def test_fidelity_options_are_validated_naming_the_field(name, options, field) -> None:
    with pytest.raises(OptionError) as info:
        validate_strategy(name, options, SPACE)
    assert info.value.field == field


def test_max_budget_defaults_to_the_study_epochs() -> None:
    assert validate_strategy("asha", {}, SPACE, max_epochs=27)["max_budget"] == 27
    assert validate_strategy("asha", {"max_budget": 9}, SPACE, max_epochs=27)["max_budget"] == 9


@pytest.mark.parametrize("name", ["hyperband", "asha"])
def test_model_sampler_proposes_near_the_best_once_a_rung_has_data(name) -> None:
    """With ``sampler: bayes`` new configurations come from a GP on the largest budget
    with enough results (a third stay random); ``sampler: random`` never uses it."""

    def value_of(params):  # best at x = 0.8
        return -abs(params["x"] - 0.8)

    sources: dict[str, list[str]] = {}
    distance: dict[str, list[float]] = {}
    for sampler in ("bayes", "random"):
        history: list[TrialRecord] = []
        options = {"max_budget": 9, "sampler": sampler}
        for _ in range(40):
            strategy = make_strategy(
                name, SPACE, history, seed=3, direction="maximize", options=options
            )
            batch = strategy.ask(2)
            _complete(history, batch, value_of)
        fresh = [t for t in history if "parent" not in t.info]
        late = fresh[len(fresh) // 2 :]
        sources[sampler] = [t.info["source"] for t in late]
        distance[sampler] = [abs(t.params["x"] - 0.8) for t in late if t.info["source"] == "model"]
        distance[sampler + " all"] = [abs(t.params["x"] - 0.8) for t in late]
    assert set(sources["random"]) == {"random"}
    model_share = sources["bayes"].count("model") / len(sources["bayes"])
    assert 0.45 < model_share < 0.9  # about 2/3
    near_model = statistics.median(distance["bayes"])
    near_random = statistics.median(distance["random all"])
    assert near_model < 0.05 < near_random, (near_model, near_random)


def test_asha_promotes_the_top_third_from_checkpoints_without_waiting() -> None:
    history: list[TrialRecord] = []
    opts = {"max_budget": 9, "eta": 3, "sampler": "random", "brackets": 1}

    def ask(n: int):
        return make_strategy(
            "asha", SPACE, history, seed=1, options=opts, direction="maximize"
        ).ask(n)

    first = ask(3)
    bottom = {"bracket": 0, "rung": 0, "budget": 1, "source": "random"}
    assert [s.info for s in first] == [bottom] * 3
    _complete(history, first, lambda p: p["x"])
    promoted = ask(1)[0]
    best = max(history, key=lambda t: t.value)
    assert promoted.info == {"bracket": 0, "rung": 1, "budget": 3, "parent": best.number}
    assert promoted.params == best.params
    _queue(history, [promoted])
    # only one of three may go up: the next ask starts a new configuration
    assert ask(1)[0].info == bottom


def test_asha_never_promotes_a_trial_twice_and_ranks_by_direction() -> None:
    history: list[TrialRecord] = []
    opts = {"max_budget": 9, "eta": 3, "brackets": 1}
    for _ in range(40):
        suggestions = make_strategy("asha", SPACE, history, seed=2, options=opts).ask(2)
        _complete(history, suggestions, lambda p: (p["x"] - 0.3) ** 2)  # minimize
    parents = [t.info["parent"] for t in history if "parent" in t.info]
    assert len(parents) == len(set(parents))
    assert any(t.info["rung"] == 2 and t.info["budget"] == 9 for t in history)
    for t in history:
        if "parent" in t.info:
            parent = history[t.info["parent"]]
            assert parent.info["rung"] == t.info["rung"] - 1
            assert parent.params == t.params
            peers = [p for p in history[: t.number] if p.info["rung"] == parent.info["rung"]]
            better = sum(p.value < parent.value for p in peers)
            assert better < max(1, len(peers) / 3) + 1  # it was in the top third


def test_asha_brackets_start_configurations_higher_and_promote_within_their_bracket() -> None:
    history: list[TrialRecord] = []
    opts = {"max_budget": 27, "eta": 3, "sampler": "random", "brackets": 4}
    for _ in range(120):
        suggestions = make_strategy("asha", SPACE, history, seed=4, options=opts).ask(2)
        _complete(history, suggestions, lambda p: (p["x"] - 0.3) ** 2)
    new = [t for t in history if "parent" not in t.info]
    starts = {b: sum(t.info["bracket"] == b for t in new) for b in range(4)}
    # Hyperband's bracket sizes for R = 27, eta = 3: 27, 12, 6, 4 configurations
    shares = [27 / 49, 12 / 49, 6 / 49, 4 / 49]
    for b, share in enumerate(shares):
        assert abs(starts[b] - share * len(new)) <= 1, starts
    for t in new:
        assert t.info["rung"] == t.info["bracket"]
        assert t.info["budget"] == [1, 3, 9, 27][t.info["bracket"]]
    for t in history:
        if "parent" in t.info:
            parent = history[t.info["parent"]]
            assert parent.info["bracket"] == t.info["bracket"]
            assert parent.info["rung"] == t.info["rung"] - 1
    assert make_strategy("asha", SPACE, history, options=opts).model_fidelity == "all"
    # by default: a bracket per rung with the model sampler, plain ASHA with random
    assert validate_strategy("asha", {"max_budget": 27}, SPACE)["brackets"] == 4
    plain = {"max_budget": 27, "sampler": "random"}
    assert validate_strategy("asha", plain, SPACE)["brackets"] == 1
    assert validate_strategy("hyperband", {"max_budget": 27}, SPACE)["sampler"] == "bayes"
    one = {**opts, "brackets": 1}
    assert make_strategy("asha", SPACE, history, options=one).model_fidelity == "start"


def test_asha_brackets_option_is_validated_and_capped_at_the_rungs() -> None:
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(OptionError) as info:
            validate_strategy("asha", {"max_budget": 9, "brackets": bad}, SPACE)
        assert info.value.field == "strategy.options.brackets"
    many = make_strategy("asha", SPACE, options={"max_budget": 9, "brackets": 50})
    assert many.brackets == 3  # rungs 1, 3, 9
    old = [TrialRecord(0, {"x": 0.5}, "completed", 1.0, info={"rung": 0, "budget": 1})]
    # a trial from before brackets counts in bracket 0
    assert make_strategy("asha", SPACE, old, options={"max_budget": 9, "brackets": 2})._started == [
        1,
        0,
    ]


def test_hyperband_runs_successive_halving_per_bracket_and_uses_idle_workers() -> None:
    history: list[TrialRecord] = []
    # s_max = 2: bracket plan [(9,1),(3,3),(1,9)]
    opts = {"max_budget": 9, "eta": 3, "sampler": "random"}

    def ask(n: int):
        return make_strategy("hyperband", SPACE, history, seed=3, options=opts).ask(n)

    rung0 = ask(9)
    assert all(s.info == {"bracket": 0, "rung": 0, "budget": 1, "source": "random"} for s in rung0)
    running = _queue(history, rung0)
    # rung 0 still running: an idle worker gets work from the next bracket instead
    assert ask(1)[0].info == {"bracket": 1, "rung": 0, "budget": 3, "source": "random"}
    for t in running:
        history[t.number] = TrialRecord(
            number=t.number, params=t.params, status="completed", value=t.params["x"], info=t.info
        )
    promoted = ask(3)
    top3 = sorted(running, key=lambda t: t.params["x"])[:3]  # minimize x
    assert [s.info["parent"] for s in promoted] == [t.number for t in top3]
    assert all(s.info["rung"] == 1 and s.info["budget"] == 3 for s in promoted)


def test_median_rule() -> None:
    peers = [0.5, 0.6, 0.7, 0.8, 0.9]
    rule = MedianRule()  # warmup_steps 2, min_trials 5
    assert rule.decide(3, 0.65, peers, "maximize") == "stop"
    assert rule.decide(3, 0.75, peers, "maximize") == "continue"
    assert rule.decide(3, 0.7, peers, "maximize") == "continue"  # only strictly worse stops
    assert rule.decide(3, 0.65, peers, "minimize") == "continue"
    assert rule.decide(1, 0.1, peers, "maximize") == "continue"  # warm-up
    assert rule.decide(2, 0.1, peers, "maximize") == "stop"
    assert rule.decide(3, 0.1, peers[:4], "maximize") == "continue"  # too few peers
    assert rule.decide(3, 0.1, [*peers[:4], math.nan], "maximize") == "continue"  # NaN: no peer
    assert MedianRule({"min_trials": 4}).decide(3, 0.1, peers[:4], "maximize") == "stop"
    assert rule.reason(3, 0.65, peers, "maximize") == (
        "median stopping: best 0.65 by step 3 is worse than the median of 5 earlier trials"
    )
