"""The shared contract every registered stopping rule must pass (``search.stopping``).

Parametrized over ``STOPPING_RULES``: a rule added to the registry is tested here
without touching this file. Give it test options in ``RULE_OPTIONS`` if its defaults do
not suit the inputs below, and rule-specific bad options in ``BAD_OPTIONS``.
"""

from __future__ import annotations

import ast
import inspect
import math
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from search.errors import OptionError
from search.status import Direction
from search.stopping import StoppingRule
from search.stopping_registry import (
    STOPPING_RULES,
    get_stopping_rule,
    make_stopping_rule,
    stopping_rule_names,
    validate_stopping_rule,
)

# Per-rule options for these tests; {} (the defaults) when absent.
RULE_OPTIONS: dict[str, dict[str, Any]] = {}
# Per-rule bad options and the field each must be refused at.
BAD_OPTIONS: dict[str, list[tuple[dict[str, Any], str]]] = {
    "median": [
        ({"warmup_steps": -1}, "stopping.warmup_steps"),
        ({"warmup_steps": 1.5}, "stopping.warmup_steps"),
        ({"warmup_steps": "2"}, "stopping.warmup_steps"),
        ({"min_trials": 0}, "stopping.min_trials"),
        ({"min_trials": True}, "stopping.min_trials"),
        ({"min_trials": 10**9}, "stopping.min_trials"),
    ],
}

NAMES = sorted(STOPPING_RULES)
DIRECTIONS: tuple[Direction, Direction] = ("minimize", "maximize")
FLIP: dict[Direction, Direction] = {"minimize": "maximize", "maximize": "minimize"}
# Modules a rule's own module may import: a rule is pure and light (the client imports
# the registry to validate specs).
LIGHT = {"search.errors", "search.status", "search.stopping", "__future__"}

Case = tuple[int, float, list[float], Direction]


def build(name: str) -> StoppingRule:
    return make_stopping_rule(name, RULE_OPTIONS.get(name, {}))


def cases(seed: int = 0, n: int = 400) -> Iterator[Case]:
    """Inputs of every kind: no peers to many, values on a coarse grid (ties with the
    peers and their median happen) or continuous, steps 0 to 12, both directions."""
    rng = random.Random(seed)
    for i in range(n):
        coarse = i % 2 == 0
        draw = (lambda: rng.randint(0, 4) / 4) if coarse else (lambda: rng.uniform(-3, 3))
        peers = [draw() for _ in range(rng.randint(0, 12))]
        yield rng.randint(0, 12), draw(), peers, DIRECTIONS[i % 2]


def worst_case(direction: Direction, step: int, n_peers: int) -> Case:
    """A trial far worse than every one of ``n_peers`` spread peers."""
    peers = [0.5 + 0.4 * k / max(n_peers - 1, 1) for k in range(n_peers)]
    if direction == "minimize":
        return step, 10.0, [-p for p in peers], direction  # peers in [-0.9, -0.5]
    return step, -10.0, peers, direction


@pytest.mark.parametrize("name", NAMES)
def test_registered_under_its_name(name: str) -> None:
    cls = STOPPING_RULES[name]
    assert issubclass(cls, StoppingRule)
    assert cls.name == name
    assert get_stopping_rule(name) is cls
    assert isinstance(make_stopping_rule(name), cls)


def test_registry_names_and_unknown_rule() -> None:
    assert stopping_rule_names() == sorted(STOPPING_RULES)
    assert stopping_rule_names(), "no stopping rule is registered"
    for bad in ("no-such-rule", "", None, 3):
        with pytest.raises(OptionError) as info:
            make_stopping_rule(bad)  # type: ignore[arg-type]
        assert info.value.field == "stopping.rule"
        with pytest.raises(OptionError) as info:
            validate_stopping_rule(bad, {})  # type: ignore[arg-type]
        assert info.value.field == "stopping.rule"


@pytest.mark.parametrize("name", NAMES)
def test_module_is_pure_and_light(name: str) -> None:
    """No I/O, no clock, no heavy import: the standard library (minus the clock and the
    RNG) and the search vocabulary only."""
    path = Path(inspect.getfile(STOPPING_RULES[name]))
    forbidden_stdlib = {"time", "datetime", "random", "os", "io", "socket", "pathlib"}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        else:
            continue
        for module in modules:
            root = module.split(".")[0]
            stdlib = root in sys.stdlib_module_names and root not in forbidden_stdlib
            assert stdlib or module in LIGHT, f"{path.name} imports {module}"


@pytest.mark.parametrize("name", NAMES)
def test_answers_only_continue_or_stop_with_a_reason(name: str) -> None:
    rule = build(name)
    answers = set()
    for step, best, peers, direction in cases():
        answer = rule.decide(step, best, peers, direction)
        assert answer in ("continue", "stop"), answer
        answers.add(answer)
        if answer == "stop":
            reason = rule.reason(step, best, peers, direction)
            assert isinstance(reason, str) and reason.strip()
    assert answers == {"continue", "stop"}, "these inputs should see both answers"


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_order_free(name: str) -> None:
    """Same options and inputs, same answer: asked twice, by a rebuilt rule, or with the
    peers in another order (the cache feeds them sorted, the query in any order)."""
    first, again = build(name), build(name)
    rng = random.Random(1)
    for step, best, peers, direction in cases(seed=1):
        answer = first.decide(step, best, peers, direction)
        assert first.decide(step, best, list(peers), direction) == answer
        assert again.decide(step, best, tuple(peers), direction) == answer
        shuffled = rng.sample(peers, len(peers))
        assert again.decide(step, best, shuffled, direction) == answer
        if answer == "stop":
            assert again.reason(step, best, shuffled, direction) == first.reason(
                step, best, peers, direction
            )


@pytest.mark.parametrize("name", NAMES)
def test_never_stops_without_peers(name: str) -> None:
    rule = build(name)
    for direction in DIRECTIONS:
        for step in range(0, 50):
            for best in (-1e9, -1.0, 0.0, 1.0, 1e9, math.inf, -math.inf):
                assert rule.decide(step, best, [], direction) == "continue"


@pytest.mark.parametrize("name", NAMES)
def test_never_stops_before_its_warm_up(name: str) -> None:
    rule = build(name)
    warmup = rule.warmup_steps
    assert isinstance(warmup, int) and warmup >= 0
    for direction in DIRECTIONS:
        for step in range(warmup):
            for n_peers in (1, 5, 50, 500):
                assert rule.decide(*worst_case(direction, step, n_peers)) == "continue"
        for step, best, peers, _ in cases(seed=2):
            if step < warmup:
                assert rule.decide(step, best, peers, direction) == "continue"


@pytest.mark.parametrize("name", NAMES)
def test_a_clearly_worst_trial_is_eventually_stopped(name: str) -> None:
    rule = build(name)
    for direction in DIRECTIONS:
        stopped = [
            (step, n)
            for step in range(rule.warmup_steps, rule.warmup_steps + 20)
            for n in (1, 3, 10, 50, 200)
            if rule.decide(*worst_case(direction, step, n)) == "stop"
        ]
        assert stopped, f"{name} never stops a trial worse than all of 200 peers ({direction})"


@pytest.mark.parametrize("name", NAMES)
def test_mirror_symmetry(name: str) -> None:
    """Negating every value and flipping the direction gives the same answer (ties
    included: the coarse cases tie with the median often)."""
    rule = build(name)
    for step, best, peers, direction in cases(seed=3):
        mirrored = rule.decide(step, -best, [-p for p in peers], FLIP[direction])
        assert mirrored == rule.decide(step, best, peers, direction), (step, best, peers)


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_values_do_not_crash_it(name: str) -> None:
    rule = build(name)
    odd = [math.nan, math.inf, -math.inf]
    for step, best, peers, direction in cases(seed=4, n=200):
        for values in ([*peers, *odd], [math.nan] * (len(peers) + 1), [*peers, math.inf] * 3):
            for mine in (best, math.nan, math.inf, -math.inf):
                answer = rule.decide(step, mine, values, direction)
                assert answer in ("continue", "stop")
                if answer == "stop":
                    assert isinstance(rule.reason(step, mine, values, direction), str)


@pytest.mark.parametrize("name", NAMES)
def test_default_options_validate_and_revalidate(name: str) -> None:
    """``None`` and ``{}`` give the defaults; validated options validate to themselves
    (the spec stores them completed, and the server rebuilds the rule from them)."""
    cls = STOPPING_RULES[name]
    defaults = cls.validate_options(None)
    assert isinstance(defaults, dict)
    assert cls.validate_options({}) == defaults
    assert validate_stopping_rule(name, None) == defaults
    assert cls.validate_options(defaults) == defaults
    options = cls.validate_options(RULE_OPTIONS.get(name, {}))
    assert cls.validate_options(options) == options
    assert build(name).options == options


@pytest.mark.parametrize("name", NAMES)
def test_bad_options_refused_naming_the_field(name: str) -> None:
    cls = STOPPING_RULES[name]
    defaults = cls.validate_options(None)
    bad: list[tuple[Any, str]] = [
        ({"bogus_option": 1}, "stopping.bogus_option"),
        (["warmup_steps"], "stopping"),
        # An object no JSON or YAML spec can hold is no valid value of any option.
        *(({key: object()}, f"stopping.{key}") for key in defaults),
        *BAD_OPTIONS.get(name, []),
    ]
    for options, field in bad:
        for refuse in (cls.validate_options, cls, lambda o: validate_stopping_rule(name, o)):
            with pytest.raises(OptionError) as info:
                refuse(options)
            assert info.value.field == field, (options, info.value)
