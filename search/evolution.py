"""Steady-state evolutionary search: tournament selection, uniform crossover, per-type
mutation, replace-the-worst (or aging) with elitism, asynchronous by construction.

The population is never stored: it is recomputed from the trial history on every
rebuild, so the strategy stays a pure function of ``(space, history, seed, options)``.
Genes are mutated in the parameter's unit interval (logarithmic for ``log`` parameters),
so one mutation scale suits learning rates spanning decades and layer counts alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from search.base import OptionError, Strategy, Suggestion, TrialRecord
from search.checks import option_int, option_number
from search.params import CategoricalParam, FloatParam, IntParam
from search.space import Param
from search.status import OPEN

__all__ = ["EvolutionStrategy"]

_DEFAULTS: dict[str, Any] = {
    "population_size": 20,
    "tournament_size": 3,
    "selection": "tournament",
    "crossover_rate": 0.5,
    "mutation_rate": None,  # None: 1 / (number of active parameters of the child)
    "mutation_scale": 0.1,
    "elite": 1,
    "replacement": "worst",
}
_MAX_POPULATION = 10_000
# Re-mutations tried before a child identical to a known trial is accepted anyway (in a
# tiny space repeats are unavoidable; a bounded loop keeps ask cheap).
_DEDUPE_TRIES = 8


def _reflect(u: float) -> float:
    """Fold ``u`` into [0, 1] by reflection at the bounds (keeps the mutation symmetric
    near a bound, where clipping would pile children onto the bound itself)."""
    u = math.fmod(abs(u), 2.0)
    return 2.0 - u if u > 1.0 else u


def _unit_bounds(p: FloatParam | IntParam) -> tuple[float, float]:
    """The numeric interval a float/int gene lives in, log-transformed when ``log``."""
    high = p.top if isinstance(p, IntParam) else p.high
    if p.log:
        return math.log(p.low), math.log(high)
    return float(p.low), float(high)


def _mutate_gene(p: Param, value: Any, scale: float, rng: np.random.Generator) -> Any:
    """A mutated copy of one gene; always a value of ``p``'s domain (plain Python)."""
    if isinstance(p, CategoricalParam):
        others = [c for c in p.choices if p.canonical(c) != p.canonical(value)]
        return others[int(rng.integers(len(others)))] if others else value
    if isinstance(p, IntParam) and p.count == 1:
        return value
    lo, hi = _unit_bounds(p)
    x = math.log(value) if p.log else float(value)
    delta = float(rng.normal(0.0, scale))
    u = _reflect((x - lo) / (hi - lo) + delta)
    y = lo + u * (hi - lo)
    y = math.exp(y) if p.log else y
    if isinstance(p, FloatParam):
        return min(max(float(y), p.low), p.high)
    count, step, low = p.count, p.step, p.low
    k_old = (int(value) - low) // step
    k = min(max(round((y - low) / step), 0), count - 1)
    if k == k_old:
        # A small step rounds back onto the same lattice point; move one point in the
        # drawn direction instead, so a mutation of a coarse int always does something.
        k = k_old + (1 if delta >= 0 else -1)
        if not 0 <= k < count:
            k = k_old - (1 if delta >= 0 else -1)
    return int(low + k * step)


class EvolutionStrategy(Strategy):
    """A steady-state genetic algorithm that breeds from whatever has completed.

    **Population.** The completed, in-space trials with a finite value. With
    ``replacement="worst"`` (default) the population is the best ``population_size``
    of them: every new member replaces the worst, and the best are therefore never
    removed (elitism holds for any ``elite``). With ``replacement="oldest"`` it is
    regularized (aging) evolution: members join in history order and, once the
    population is full, each newcomer retires the oldest member that is not among the
    ``elite`` best (robust to noisy objectives; ``elite=population_size`` gives back
    "worst"). Ties in fitness go to the earlier trial.

    **Initial population.** While fewer than ``population_size`` in-space trials are
    completed or in flight (queued/running, or suggested earlier by this instance), ask
    returns random samples of the space (generation 0). Failed trials do not count, so
    they are replaced. Beyond that, children are bred from the current population at
    once, however few have completed: no one waits for a generation to finish.

    **A child.** Parent 1 is chosen by ``selection``: ``"tournament"`` (the best of
    ``tournament_size`` distinct members drawn at random) or ``"rank"`` (linear ranking,
    probability proportional to ``population - rank``; a tournament larger than the
    current population takes its best). With probability
    ``crossover_rate`` a second, different parent is chosen the same way and each gene
    comes from either parent with probability 1/2. Then each gene mutates with
    probability ``mutation_rate`` (default 1/number of active genes): floats by a
    gaussian of std ``mutation_scale`` in the (log-)unit interval, reflected at the
    bounds; ints likewise, snapped to the step lattice and moved at least one point;
    categoricals to a different choice. In a conditional space, genes that became active
    are inherited from a parent that has them, else sampled; inactive ones are dropped.
    A child equal to a known trial is mutated again (a few tries).

    **Contract.** Every suggestion is inside the space; ``Suggestion.info`` is
    ``{"generation": g, "parents": [trial numbers]}``, ``g = 0`` for random samples and
    ``1 + max(parent generations)`` for children (a parent without a stored generation
    counts as 0). Failed, pruned, stopped, unfinished or non-finite trials are never
    parents; trials outside the space are ignored. The RNG is seeded with
    ``[seed, len(history)]``, so the same seed and history give the same suggestions and
    a rebuilt strategy draws fresh ones.
    """

    name = "evolution"

    @classmethod
    def validate_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return every option with defaults filled in, or raise ``OptionError``."""
        given = cls._check_option_keys(options, tuple(_DEFAULTS))
        opts = {**_DEFAULTS, **given}

        def integer(key: str, low: int, high: int) -> int:
            return option_int(key, opts[key], low, high)

        def real(key: str, low: float, high: float, *, open_low: bool = False) -> float:
            return option_number(key, opts[key], low, high, open_low=open_low)

        def choice(key: str, allowed: tuple[str, ...]) -> str:
            if opts[key] not in allowed:
                raise OptionError(
                    f"options.{key}", f"must be one of {', '.join(allowed)}; got {opts[key]!r}"
                )
            return str(opts[key])

        size = integer("population_size", 2, _MAX_POPULATION)
        return {
            "population_size": size,
            # Larger than the population is allowed: a tournament draws at most all members.
            "tournament_size": integer("tournament_size", 1, _MAX_POPULATION),
            "selection": choice("selection", ("tournament", "rank")),
            "crossover_rate": real("crossover_rate", 0.0, 1.0),
            "mutation_rate": None
            if opts["mutation_rate"] is None
            else real("mutation_rate", 0.0, 1.0, open_low=True),
            "mutation_scale": real("mutation_scale", 0.0, 1.0, open_low=True),
            "elite": integer("elite", 0, size),
            "replacement": choice("replacement", ("worst", "oldest")),
        }

    def _setup(self) -> None:
        self._rng = np.random.default_rng([self.seed, len(self.history)])
        in_space = [t for t in self.history if self.in_space(t)]
        self._seen = {self._key(t.params) for t in in_space}
        completed = self.completed()
        self._filled = len(completed) + sum(t.status in OPEN for t in in_space)
        # The current population, best first (read-only for callers and tests).
        self.population: list[TrialRecord] = self._select_population(completed)

    def _fitness(self, trial: TrialRecord) -> tuple[float, int]:
        # Lower is better; the trial number breaks ties so results never depend on sorting.
        # Only completed trials with a finite value are ranked (``Strategy.completed``).
        assert trial.value is not None
        return (self.loss(float(trial.value)), trial.number)

    def _select_population(self, completed: list[TrialRecord]) -> list[TrialRecord]:
        size: int = self.options["population_size"]
        if self.options["replacement"] == "worst":
            return sorted(completed, key=self._fitness)[:size]
        elite: int = self.options["elite"]
        members: list[TrialRecord] = []  # oldest first
        for trial in completed:
            members.append(trial)
            if len(members) > size:
                protected = {t.number for t in sorted(members, key=self._fitness)[:elite]}
                victims = [t for t in members if t.number not in protected]
                victim = victims[0] if victims else max(members, key=self._fitness)
                members.remove(victim)
        return sorted(members, key=self._fitness)

    def _key(self, params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        """A hashable identity of a point (floats compared to 12 significant digits)."""
        return tuple(
            (name, self.space[name].canonical(params[name]))
            for name in self.space.names
            if name in params
        )

    def _active(self, params: Mapping[str, Any]) -> set[str]:
        # Conditional spaces name their active parameters; a plain space has all active.
        active_names: Callable[[Mapping[str, Any]], Any] | None = getattr(
            self.space, "active_names", None
        )
        return set(self.space.names if active_names is None else active_names(params))

    def _pick(self, exclude: int | None = None) -> TrialRecord:
        """One parent from the population (best first), by tournament or rank."""
        pool = [t for t in self.population if t.number != exclude] or self.population
        if self.options["selection"] == "rank":
            weights = np.arange(len(pool), 0, -1, dtype=float)
            return pool[int(self._rng.choice(len(pool), p=weights / weights.sum()))]
        k = min(self.options["tournament_size"], len(pool))
        drawn = self._rng.choice(len(pool), size=k, replace=False)
        return pool[int(min(drawn))]  # the pool is sorted best first

    def _repair(self, child: dict[str, Any], parents: list[TrialRecord]) -> dict[str, Any]:
        """Make ``child`` exactly the active genes: fill newly active ones from a parent
        (else a fresh sample), drop inactive ones, until nothing changes."""
        for _ in range(len(self.space) + 1):
            active = self._active(child)
            changed = False
            for name in [n for n in child if n not in active]:
                del child[name]
                changed = True
            for p in self.space.params:
                if p.name in active and p.name not in child:
                    donors = [t.params[p.name] for t in parents if p.name in t.params]
                    child[p.name] = donors[0] if donors else p.sample(self._rng)
                    changed = True
            if not changed:
                break
        return {name: child[name] for name in self.space.names if name in child}

    def _mutate(self, child: dict[str, Any], parents: list[TrialRecord], force: bool) -> None:
        names = [n for n in self.space.names if n in child]
        rate = self.options["mutation_rate"] or 1.0 / max(len(names), 1)
        hits = [n for n in names if self._rng.random() < rate]
        if force and not hits and names:
            hits = [names[int(self._rng.integers(len(names)))]]
        scale: float = self.options["mutation_scale"]
        for name in hits:
            if name in child:  # an earlier mutation may have deactivated it
                child[name] = _mutate_gene(self.space[name], child[name], scale, self._rng)
                # A mutated categorical may switch other genes on or off.
                fixed = self._repair(dict(child), parents)
                child.clear()
                child.update(fixed)

    def _child(self) -> Suggestion:
        first = self._pick()
        parents = [first]
        if len(self.population) > 1 and self._rng.random() < self.options["crossover_rate"]:
            parents.append(self._pick(exclude=first.number))
        child: dict[str, Any] = {}
        for name in self.space.names:
            donors = [t.params[name] for t in parents if name in t.params]
            if donors:
                child[name] = donors[int(self._rng.integers(len(donors)))]
        child = self._repair(child, parents)
        self._mutate(child, parents, force=False)
        for _ in range(_DEDUPE_TRIES):
            if self._key(child) not in self._seen:
                break
            self._mutate(child, parents, force=True)
        child = self._repair(child, parents)
        if not self.space.contains(child):
            # Only a pathological condition graph gets here; a valid random point beats
            # an invalid child.
            return self._random()
        generation = 1 + max(self._generation(t) for t in parents)
        return Suggestion(
            params=child,
            info={"generation": generation, "parents": [t.number for t in parents]},
        )

    @staticmethod
    def _generation(trial: TrialRecord) -> int:
        g = trial.info.get("generation") if isinstance(trial.info, Mapping) else None
        return g if isinstance(g, int) and not isinstance(g, bool) and g >= 0 else 0

    def _random(self) -> Suggestion:
        params = self.space.sample(self._rng)
        for _ in range(_DEDUPE_TRIES):
            if self._key(params) not in self._seen:
                break
            params = self.space.sample(self._rng)
        return Suggestion(params=params, info={"generation": 0, "parents": []})

    def ask(self, n: int) -> list[Suggestion]:
        """``n`` suggestions: random ones while the initial population is not yet
        filled (completed + in flight), children of the current population after."""
        self._check_n(n)
        out: list[Suggestion] = []
        for _ in range(n):
            initial = self._filled < self.options["population_size"] or not self.population
            suggestion = self._random() if initial else self._child()
            self._filled += 1
            self._seen.add(self._key(suggestion.params))
            out.append(suggestion)
        return out
