"""Bayesian optimization: search quality, points in flight (fantasies, constant lies),
conditional spaces, determinism, direction, the history rules (what the model is told),
the design phase and options."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from search import BayesStrategy, OptionError, SearchSpace, TrialRecord, gp, make_strategy
from search.encoding import SpaceEncoder
from search.gp import clear_cache, refit_size

BRANIN = SearchSpace.from_dict(
    {"x1": {"type": "float", "low": -5, "high": 10}, "x2": {"type": "float", "low": 0, "high": 15}}
)
BRANIN_MIN = 0.397887

CONDITIONAL = SearchSpace.from_dict(
    {
        "model": ["mlp", "cnn"],
        "units": {"type": "int", "low": 32, "high": 256, "log": True, "when": {"model": "mlp"}},
        "filters": {"type": "int", "low": 8, "high": 64, "log": True, "when": {"model": "cnn"}},
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    }
)
# Small model settings keep these tests fast; search quality is tested with defaults.
FAST = {"n_initial_points": 5, "n_candidates": 200, "max_kernel_fit_points": 30}


def branin(p: dict[str, Any]) -> float:
    x1, x2 = p["x1"], p["x2"]
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


def conditional_score(p: dict[str, Any]) -> float:
    size = (
        math.log2(p["units"] / 128) ** 2
        if p["model"] == "mlp"
        else math.log2(p["filters"] / 16) ** 2
    )
    return size + (math.log10(p["lr"]) + 2.5) ** 2 + (0.3 if p["model"] == "cnn" else 0.0)


def key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def completed(points: list[dict[str, Any]], f: Any, start: int = 0) -> list[TrialRecord]:
    return [TrialRecord(start + i, p, "completed", f(p)) for i, p in enumerate(points)]


def optimize(name: str, seed: int, batch: int = 3, budget: int = 30, **opts: Any) -> float:
    """Best Branin value after ``budget`` evaluations, ``batch`` workers at a time,
    rebuilding the strategy from the history before every ask like the server."""
    history: list[TrialRecord] = []
    while len(history) < budget:
        strategy = make_strategy(name, BRANIN, history, seed=seed, options=opts)
        history += completed([s.params for s in strategy.ask(batch)], branin, len(history))
    return min(t.value for t in history[:budget] if t.value is not None)


def test_beats_random_on_branin() -> None:
    seeds = range(3)
    bayes = float(np.median([optimize("bayes", s) for s in seeds]))
    rand = float(np.median([optimize("random", s) for s in seeds]))
    # Typical: bayes ~0.42 (optimum 0.398), random ~1.5 at 30 evaluations.
    assert bayes - BRANIN_MIN < 0.5 * (rand - BRANIN_MIN), (bayes, rand)
    assert bayes < 0.6


def history_on_branin(n: int, seed: int = 0) -> list[TrialRecord]:
    rng = np.random.default_rng(seed)
    return completed([BRANIN.sample(rng) for _ in range(n)], branin)


def test_model_phase_suggestions_are_tagged_and_inside() -> None:
    batch = BayesStrategy(BRANIN, history_on_branin(12), options=FAST).ask(3)
    assert [s.info["source"] for s in batch] == ["model"] * 3
    assert all(s.info["acq_func"] in ("EI", "PI", "LCB") for s in batch)
    assert all(BRANIN.contains(s.params) for s in batch)


@pytest.mark.parametrize("liar", ["fantasy", "mean", "min"])
def test_points_in_flight_spread_a_batch(liar: str) -> None:
    history = history_on_branin(12)
    running = [
        TrialRecord(12 + i, BRANIN.sample(np.random.default_rng(i)), "running") for i in range(3)
    ]
    options = {**FAST, "liar": liar}
    batch = BayesStrategy(BRANIN, history + running, options=options).ask(8)
    points = np.array([[s.params["x1"], s.params["x2"]] for s in batch])
    assert len(batch) == 8 and len({key(s.params) for s in batch}) == 8
    assert not {key(s.params) for s in batch} & {key(dict(t.params)) for t in running}
    # Fantasies (or lies) push later points away from earlier ones instead of a
    # cluster of near-copies.
    gaps = [np.linalg.norm(a - b) for i, a in enumerate(points) for b in points[i + 1 :]]
    assert min(gaps) > 0.05


def test_coinciding_points_in_flight_still_give_fresh_suggestions() -> None:
    """Two trials in flight at one point, and one at an observed point (ask/tell can
    queue anything): their joint covariance is singular, and the ask still works."""
    history = history_on_branin(12)
    twin = BRANIN.sample(np.random.default_rng(99))
    running = [
        TrialRecord(12, twin, "running"),
        TrialRecord(13, dict(twin), "queued"),
        TrialRecord(14, dict(history[0].params), "running"),
    ]
    batch = BayesStrategy(BRANIN, history + running, options=FAST).ask(3)
    assert len({key(s.params) for s in batch}) == 3
    assert all(s.info["source"] == "model" for s in batch)


def test_fantasy_averages_are_bounded_by_the_plain_acquisition() -> None:
    """The bound that lets an ask compute fantasy averages for a few candidates only:
    averaged over the fantasies, EI and PI are at most what they are without them."""
    from search.acquisition import scorer
    from search.gp import Fantasies, Posterior

    history = history_on_branin(15)
    strategy = BayesStrategy(BRANIN, history, options=FAST)
    kernel, noise, x, y, _, _ = strategy._model()
    rng = np.random.default_rng(0)
    flying = strategy._encoder.unit_features(rng.random((3, 2)))
    post = Posterior(kernel, noise, x, y, np.vstack([flying, rng.random((500, 2))]))
    fant = Fantasies(post, [0, 1, 2], rng.standard_normal((3, 4096)))
    rows = np.arange(500)
    for name in ("EI", "PI"):
        bound, exact = scorer(name, post, float(y.min()), fant, 3, xi=0.01, kappa=1.96)
        assert exact is not None
        values = exact(rows)
        assert np.all(values <= bound + 0.02 * bound.max())
        assert values.mean() < bound.mean()  # the points in flight took some of it


def test_a_fantasy_ask_equals_scoring_every_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    from search import acquisition

    history = history_on_branin(14)
    points = [BRANIN.sample(np.random.default_rng(7 + i)) for i in range(3)]
    running = [TrialRecord(14 + i, p, "queued") for i, p in enumerate(points)]
    options = {**FAST, "n_candidates": 600}

    def suggestions() -> list[dict[str, Any]]:
        strategy = BayesStrategy(BRANIN, history + running, seed=4, options=options)
        return [s.params for s in strategy.ask(4)]

    pruned = suggestions()
    monkeypatch.setattr(acquisition, "CHUNK", 10**6)  # every candidate in the first chunk
    assert suggestions() == pruned


def test_in_flight_trials_change_the_next_suggestion() -> None:
    history = history_on_branin(12)
    first = BayesStrategy(BRANIN, history, options=FAST).ask(1)[0].params
    # The same point now in flight (the server queued it): the rebuilt strategy moves on.
    again = BayesStrategy(BRANIN, [*history, TrialRecord(12, first, "queued")], options=FAST)
    assert again.ask(1)[0].params != first


def test_one_instance_treats_its_own_suggestions_as_in_flight() -> None:
    strategy = BayesStrategy(BRANIN, history_on_branin(12), options=FAST)
    seen = [key(s.params) for _ in range(3) for s in strategy.ask(2)]
    assert len(set(seen)) == 6


def test_conditional_suggestions_are_valid_in_both_phases() -> None:
    history: list[TrialRecord] = []
    for _ in range(6):
        strategy = BayesStrategy(CONDITIONAL, history, seed=3, options=FAST)
        batch = strategy.ask(3)
        for s in batch:
            CONDITIONAL.check(s.params)  # raises, naming the parameter, if not
            assert set(s.params) == set(CONDITIONAL.active_names(s.params))
        history += completed([s.params for s in batch], conditional_score, len(history))
    sources = {t.params["model"] for t in history}
    assert sources == {"mlp", "cnn"}
    assert strategy.ask(1)[0].info["source"] == "model"


def test_model_never_sees_inactive_values() -> None:
    encoder = SpaceEncoder(CONDITIONAL)
    cnn = encoder.features([{"model": "cnn", "filters": 64, "lr": 0.01}])[0]
    other = encoder.features([{"model": "cnn", "filters": 64, "lr": 0.01, "units": 256}])[0]
    mlp = encoder.features([{"model": "mlp", "units": 256, "lr": 0.01}])[0]
    # Columns: model (one 0/1 column for two choices), units, filters, lr.
    assert cnn[1] == 0.0 and mlp[2] == 0.0  # inactive: the constant, whatever was held
    assert np.array_equal(cnn, other)
    assert mlp[1] == 1.0 and cnn[2] == 1.0
    # A trial that carries a value for an inactive parameter is not a point of the
    # space, so the model is never told about it at all.
    garbage = TrialRecord(
        0, {"model": "cnn", "filters": 16, "lr": 0.01, "units": 999}, "completed", 0.1
    )
    good = TrialRecord(1, {"model": "mlp", "units": 64, "lr": 0.01}, "completed", 0.2)
    strategy = BayesStrategy(CONDITIONAL, [garbage, good])
    assert [p for p, _ in strategy.observations] == [dict(good.params)]


def test_same_seed_and_history_same_suggestions_with_or_without_cache() -> None:
    history = history_on_branin(10)
    running = [TrialRecord(10, {"x1": 0.0, "x2": 5.0}, "running")]
    clear_cache()
    a = BayesStrategy(BRANIN, history + running, seed=4, options=FAST).ask(4)
    b = BayesStrategy(BRANIN, history + running, seed=4, options=FAST).ask(4)  # cached fit
    clear_cache()
    c = BayesStrategy(BRANIN, history + running, seed=4, options=FAST).ask(4)
    assert a == b == c
    d = BayesStrategy(BRANIN, history + running, seed=5, options=FAST).ask(4)
    assert d != a


def _fits(histories: list[list[TrialRecord]], **options: Any) -> int:
    """Kernel fits (cache entries made) while asking once on each history, cold."""
    clear_cache()
    for history in histories:
        BayesStrategy(BRANIN, history, seed=1, options={**FAST, **options}).ask(1)
    return len(gp._cache)


def test_hyperparameters_are_refitted_on_a_schedule_not_every_trial() -> None:
    """Between two sizes of the schedule (a tenth more observations) the kernel is
    fitted once; with ``refit_growth`` 0 on every ask. Past the next size, once more."""
    full = history_on_branin(60)
    last = refit_size(60, FAST["n_initial_points"], 0.1)  # 57: the one before is 51
    assert last < 58
    assert _fits([full[:n] for n in range(last, 61)]) == 1
    assert _fits([full[:n] for n in range(last, 61)], refit_growth=0) == 61 - last
    assert _fits([full[:40], full[:60]]) == 2


def test_a_history_gives_the_same_suggestions_whatever_was_asked_before() -> None:
    """The refit schedule is a function of the history alone: a strategy asked cold
    suggests what one asked after a run of smaller histories does."""
    full = history_on_branin(50)
    clear_cache()
    cold = BayesStrategy(BRANIN, full, seed=3, options=FAST).ask(2)
    clear_cache()
    for n in range(44, 50):
        BayesStrategy(BRANIN, full[:n], seed=3, options=FAST).ask(1)
    warm = BayesStrategy(BRANIN, full, seed=3, options=FAST).ask(2)
    assert warm == cold


@pytest.mark.parametrize("growth", [0.0, 0.1, 0.5])
def test_refit_sizes_grow_by_the_fraction(growth: float) -> None:
    sizes = [refit_size(n, 10, growth) for n in range(1, 400)]
    assert sizes == sorted(sizes)  # never back
    for n, size in zip(range(1, 400), sizes, strict=True):
        assert size <= n
        if growth == 0 or n <= 10:
            assert size == min(n, 10) if growth else size == n
        else:
            assert n < max(size + 1, math.ceil(size * (1 + growth)))  # the next is above n
    if growth:
        steps = len(set(sizes[10:]))  # refits from 10 to 399 observations
        assert steps < 2 + math.log(40) / math.log(1 + growth) + 10


def test_a_rebuild_checks_only_the_trials_it_has_not_seen(monkeypatch) -> None:
    """Rebuilt for every ask, the strategy checks and keys a trial once: the same
    records again cost no membership check, a new record one; what it learns from
    them (an out-of-space trial ignored included) is the same either way."""
    checks = []
    contains = SearchSpace.contains
    monkeypatch.setattr(
        SearchSpace, "contains", lambda space, params: checks.append(1) or contains(space, params)
    )
    outside = TrialRecord(12, {"x1": 99.0, "x2": 1.0}, "completed", 0.5)
    history = [*history_on_branin(12), outside]
    first = BayesStrategy(BRANIN, history, options=FAST).observations
    assert len(checks) == 13 and len(first) == 12
    checks.clear()
    again = BayesStrategy(BRANIN, history, options=FAST).observations
    assert checks == [] and again == first
    new = TrialRecord(13, {"x1": 1.0, "x2": 2.0}, "completed", branin({"x1": 1.0, "x2": 2.0}))
    grown = BayesStrategy(BRANIN, [*history, new], options=FAST).observations
    assert len(checks) == 1 and grown == [*first, ({"x1": 1.0, "x2": 2.0}, new.value)]
    grown[0][0]["x1"] = -1.0  # a caller's copy: the strategy's own view is unchanged
    assert BayesStrategy(BRANIN, history, options=FAST).observations == first


def test_maximize_is_minimize_of_the_negation() -> None:
    history = history_on_branin(10)
    negated = [TrialRecord(t.number, t.params, t.status, -t.value) for t in history]  # type: ignore[operator]
    low = BayesStrategy(BRANIN, history, seed=2, options=FAST).ask(3)
    high = BayesStrategy(BRANIN, negated, direction="maximize", seed=2, options=FAST).ask(3)
    assert low == high
    strategy = BayesStrategy(BRANIN, negated, direction="maximize", options=FAST)
    assert [v for _, v in strategy.observations] == [t.value for t in history]


def test_what_the_model_is_told() -> None:
    rng = np.random.default_rng(0)
    p = [BRANIN.sample(rng) for _ in range(9)]
    history = [
        TrialRecord(0, p[0], "completed", 1.0),
        TrialRecord(1, p[1], "failed"),
        TrialRecord(2, p[2], "stopped", None, {0: 3.0}),
        TrialRecord(3, p[3], "pruned", None, {0: 9.0, 4: 5.0, 2: 7.0}),  # last step: 5.0
        TrialRecord(4, p[4], "pruned", 4.0, {0: 8.0}),  # its value wins
        TrialRecord(5, p[5], "completed", float("nan")),
        TrialRecord(6, p[6], "running", None, {0: 2.0}),
        TrialRecord(7, {"x1": 99.0, "x2": 1.0}, "completed", 0.0),  # outside the space
        TrialRecord(8, p[8], "completed", True),  # type: ignore[arg-type]
    ]
    told = BayesStrategy(BRANIN, history).observations
    assert told == [(p[0], 1.0), (p[3], 5.0), (p[4], 4.0)]
    without = BayesStrategy(BRANIN, history, options={"use_pruned": False}).observations
    assert without == [(p[0], 1.0)]


def test_failed_points_are_not_suggested_again_in_a_tiny_space() -> None:
    space = SearchSpace.from_dict({"a": ["x", "y"], "b": [1, 2]})
    history = [
        TrialRecord(0, {"a": "x", "b": 1}, "failed"),
        TrialRecord(1, {"a": "y", "b": 2}, "completed", 1.0),
    ]
    batch = BayesStrategy(space, history, options={"n_initial_points": 1}).ask(2)
    assert {key(s.params) for s in batch} == {key({"a": "x", "b": 2}), key({"a": "y", "b": 1})}
    # Asked for more than there are points: repeats of finished points, never of one in
    # flight or within the batch, so at most 4.
    assert len(BayesStrategy(space, history, options={"n_initial_points": 1}).ask(10)) == 4


def test_design_phase_follows_the_seeded_design_and_skips_history() -> None:
    fresh = BayesStrategy(BRANIN, seed=8, options={"n_initial_points": 6}).ask(6)
    assert [s.info["source"] for s in fresh] == ["design"] * 6
    running = [TrialRecord(i, s.params, "running") for i, s in enumerate(fresh[:2])]
    rebuilt = BayesStrategy(BRANIN, running, seed=8, options={"n_initial_points": 6}).ask(6)
    assert rebuilt[:4] == fresh[2:]
    assert [s.info["source"] for s in rebuilt[4:]] == ["random", "random"]
    # Sobol' points are spread: no two in the same cell of a 3 x 3 grid over 6 points
    # would be too strict, but every third of each axis is visited.
    for name, low, high in (("x1", -5, 10), ("x2", 0, 15)):
        thirds = {int(3 * (s.params[name] - low) / (high - low)) for s in fresh}
        assert thirds == {0, 1, 2}


@pytest.mark.parametrize("generator", ["sobol", "halton", "lhs", "random"])
def test_every_design_generator_is_deterministic(generator: str) -> None:
    opts = {"initial_point_generator": generator, "n_initial_points": 5}
    a = BayesStrategy(CONDITIONAL, seed=1, options=opts).ask(5)
    assert a == BayesStrategy(CONDITIONAL, seed=1, options=opts).ask(5)
    assert all(CONDITIONAL.contains(s.params) for s in a)


@pytest.mark.parametrize("acq", ["EI", "PI", "LCB"])
def test_single_acquisition_functions(acq: str) -> None:
    batch = BayesStrategy(BRANIN, history_on_branin(8), options={**FAST, "acq_func": acq}).ask(2)
    assert [s.info["acq_func"] for s in batch] == [acq, acq]


def test_fit_subset_bounds_the_model() -> None:
    history = history_on_branin(40)
    opts = {**FAST, "max_fit_points": 12, "max_kernel_fit_points": 6}
    batch = BayesStrategy(BRANIN, history, options=opts).ask(2)
    assert len(batch) == 2 and all(BRANIN.contains(s.params) for s in batch)


def test_features_match_scikit_optimize_transform() -> None:
    space = SearchSpace.from_dict(
        {
            "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
            "units": {"type": "int", "low": 16, "high": 512, "step": 16},
            "batch": {"type": "int", "low": 8, "high": 1024, "log": True},
            "width": {"type": "int", "low": 4, "high": 64, "step": 4, "log": True},
            "opt": ["adam", "sgd", "rmsprop"],
            "flag": [True, False],
            "fixed": ["only"],
        }
    )
    encoder = SpaceEncoder(space)
    points = encoder.decode_unit(np.random.default_rng(0).random((50, encoder.n_dims)))
    assert all(space.contains(p) for p in points)
    rows = [
        [
            p["lr"],
            (p["units"] - 16) // 16,
            p["batch"],
            p["width"],
            str(["adam", "sgd", "rmsprop"].index(p["opt"])),
            str([True, False].index(p["flag"])),
        ]
        for p in points
    ]
    assert encoder.skopt_space is not None
    assert np.array_equal(encoder.skopt_space.transform(rows), encoder.features(points))
    assert encoder.decode_unit(encoder.encode_unit(points)) == points


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"n_initial_points": 0}, "options.n_initial_points"),
        ({"n_initial_points": 2.0}, "options.n_initial_points"),
        ({"n_initial_points": True}, "options.n_initial_points"),
        ({"acq_func": "ei"}, "options.acq_func"),
        ({"initial_point_generator": "grid"}, "options.initial_point_generator"),
        ({"xi": -0.1}, "options.xi"),
        ({"kappa": "2"}, "options.kappa"),
        ({"kappa": float("inf")}, "options.kappa"),
        ({"max_fit_points": 1}, "options.max_fit_points"),
        ({"max_kernel_fit_points": 10**6}, "options.max_kernel_fit_points"),
        ({"n_candidates": 5}, "options.n_candidates"),
        ({"n_restarts_optimizer": 21}, "options.n_restarts_optimizer"),
        ({"fit_maxiter": 0}, "options.fit_maxiter"),
        ({"liar": "median"}, "options.liar"),
        ({"refit_growth": -0.1}, "options.refit_growth"),
        ({"refit_growth": 11}, "options.refit_growth"),
        ({"refit_growth": "often"}, "options.refit_growth"),
        ({"use_pruned": "yes"}, "options.use_pruned"),
        ({"acq": "EI"}, "options.acq"),
    ],
)
def test_options_validated(options: dict[str, Any], field: str) -> None:
    with pytest.raises(OptionError) as info:
        BayesStrategy.validate_options(options)
    assert info.value.field == field


def test_option_defaults() -> None:
    defaults = BayesStrategy.validate_options(None)
    assert defaults["n_initial_points"] == 10
    assert defaults["acq_func"] == "gp_hedge"
    assert defaults["initial_point_generator"] == "sobol"
    assert defaults["liar"] == "fantasy"
    assert BayesStrategy.validate_options({"xi": 0})["xi"] == 0.0


def test_single_point_space() -> None:
    space = SearchSpace.from_dict(
        {"only": ["x"], "n": {"type": "int", "low": 0, "high": 3, "step": 5}}
    )
    strategy = BayesStrategy(space, [TrialRecord(0, {"only": "x", "n": 0}, "completed", 1.0)])
    assert [s.params for s in strategy.ask(3)] == [{"only": "x", "n": 0}]


@pytest.mark.parametrize("conditional", [False, True])
def test_features_of_unit_rows_equal_those_of_their_points(conditional: bool) -> None:
    """What a model ask scores (features straight from unit rows) is what the points
    it suggests would give, inactive parameters and out-of-cube rows included."""
    spec: dict = {
        "model": ["mlp", "cnn", "tree"],
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "units": {"type": "int", "low": 16, "high": 512, "step": 16},
        "width": {"type": "int", "low": 4, "high": 64, "step": 4, "log": True},
        "flag": [True, False],
    }
    if conditional:
        spec["units"]["when"] = {"model": ["mlp"]}
        spec["width"]["when"] = {"model": ["cnn", "tree"]}
    encoder = SpaceEncoder(SearchSpace.from_dict(spec))
    rows = np.random.default_rng(1).uniform(-0.2, 1.2, (200, encoder.n_dims))
    assert np.array_equal(encoder.unit_features(rows), encoder.features(encoder.decode_unit(rows)))
