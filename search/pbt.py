"""Population-based training (Jaderberg et al., 2017), asynchronous, as Ray Tune runs it.

A population of ``population_size`` *members* trains in *segments* of ``interval``
epochs. Each segment is one trial whose ``info`` says which member it belongs to, its
``generation`` (0 for the first segment) and its ``budget`` (the epoch it trains up
to); every segment after the first continues from a ``parent`` trial's checkpoint,
which the server hands over as it does for a Hyperband/ASHA promotion.

When a member's segment completes, its next segment is decided at once (nobody waits
for a generation to finish):

* *exploit*: if the member ranks in the bottom ``quantile`` of the population, it
  copies a member drawn from the top ``quantile``: the new segment's parent is that
  member's latest completed segment, so its weights and its epoch count are taken over;
* *explore*: the copied parameters are perturbed. Each ``mutable`` parameter is, with
  probability ``resample_probability``, drawn afresh from its distribution; otherwise a
  number is multiplied by ``1 - perturb_factor`` or ``1 + perturb_factor`` (clipped to
  its bounds; an int that rounds back moves one step) and a categorical moves to a
  neighbouring choice;
* otherwise the member continues from its own segment with its own parameters.

A member is ranked by its most recent report: the last intermediate value of its newest
segment that reported one, else the value of its newest completed segment (Ray Tune's
"last result"). A segment that failed, was pruned or ended without a finite value
makes its member copy a top member (or start afresh when nothing has completed).

The study's budget counts segments: a full run is about ``population_size`` x
``ceil(max_budget / interval)`` trials. The strategy is exhausted once every member
has completed a segment at ``max_budget``. ``ask(n)`` may return fewer than ``n``
suggestions: a member in training has no next segment yet.

Pure over the history: the only randomness is ``numpy.random.default_rng([seed,
len(history)])``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from search.base import Strategy, Suggestion, TrialRecord
from search.checks import is_finite_number, option_int, option_number
from search.errors import OptionError
from search.params import CategoricalParam, FloatParam, IntParam
from search.space import Param
from search.status import OPEN

__all__ = ["DEFAULT_MUTABLE", "PbtStrategy", "lineage"]

#: The parameters the built-in training can change when a trial resumes from a
#: checkpoint (``models.TrainConfig``): the default ``mutable`` set, where the space has
#: any of them. Architecture parameters would not fit the copied weights.
DEFAULT_MUTABLE = ("lr", "decay", "momentum", "weight_decay", "batch_size")
_KEYS = (
    "population_size",
    "interval",
    "max_budget",
    "quantile",
    "resample_probability",
    "perturb_factor",
    "mutable",
)


@dataclass
class _Member:
    """What the history says of one member: its segments in history order."""

    segments: list[TrialRecord] = field(default_factory=list)

    @property
    def latest(self) -> TrialRecord:
        return self.segments[-1]

    def newest_completed(self) -> TrialRecord | None:
        done = [s for s in self.segments if _finished_well(s)]
        return done[-1] if done else None

    def last_report(self) -> float | None:
        """The member's most recent value (see the module docstring)."""
        for segment in reversed(self.segments):
            steps = [k for k, v in segment.intermediate.items() if is_finite_number(v)]
            if segment.status == "completed" and is_finite_number(segment.value):
                return float(segment.value)
            if steps and segment.status in OPEN:
                return float(segment.intermediate[max(steps)])
        return None


def _finished_well(trial: TrialRecord) -> bool:
    return trial.status == "completed" and is_finite_number(trial.value)


class PbtStrategy(Strategy):
    """Asynchronous population-based training over segments of epochs (module doc)."""

    name = "pbt"
    budget_option = "max_budget"

    @classmethod
    def validate_options(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Options (``OptionError("options.<key>")`` on a bad one):

        * ``max_budget`` (int >= 1, required; the study spec fills it from
          ``budget.epochs``): the epochs a member trains in all;
        * ``population_size`` (int 2..1000, default 8);
        * ``interval`` (int >= 1, default ``max(1, max_budget // 8)``): epochs per
          segment, between two exploit/explore decisions;
        * ``quantile`` (float in (0, 0.5], default 0.25): the share of the population
          that copies, and that is copied from;
        * ``resample_probability`` (float in [0, 1], default 0.25);
        * ``perturb_factor`` (float in (0, 1), default 0.2);
        * ``mutable`` (list of parameter names, default: those of ``DEFAULT_MUTABLE``
          in the space, or every parameter when it has none of them).
        """
        given = cls._check_option_keys(options, _KEYS)
        out: dict[str, Any] = {}
        if given.get("max_budget") is None:
            raise OptionError("options.max_budget", "is required (epochs a member trains in all)")
        out["max_budget"] = option_int("max_budget", given["max_budget"], 1)
        out["population_size"] = option_int(
            "population_size", given.get("population_size", 8), 2, 1000
        )
        interval = given.get("interval", max(1, out["max_budget"] // 8))
        out["interval"] = option_int("interval", interval, 1)
        out["quantile"] = option_number(
            "quantile", given.get("quantile", 0.25), 0.0, 0.5, open_low=True
        )
        resample = given.get("resample_probability", 0.25)
        out["resample_probability"] = option_number("resample_probability", resample, 0.0, 1.0)
        factor = given.get("perturb_factor", 0.2)
        out["perturb_factor"] = option_number("perturb_factor", factor, 0.0, 1.0, open_low=True)
        if out["perturb_factor"] >= 1.0:
            raise OptionError("options.perturb_factor", "must be less than 1")
        mutable = given.get("mutable")
        if mutable is not None and (
            not isinstance(mutable, list) or not all(isinstance(m, str) for m in mutable)
        ):
            raise OptionError("options.mutable", "must be a list of parameter names")
        out["mutable"] = None if mutable is None else list(mutable)
        return out

    def _setup(self) -> None:
        o = self.options
        unknown = [m for m in o["mutable"] or () if m not in self.space]
        if unknown:
            raise OptionError(
                "options.mutable", f"names no parameter of the space: {', '.join(unknown)}"
            )
        if o["mutable"] is None:
            o["mutable"] = [n for n in self.space.names if n in DEFAULT_MUTABLE] or list(
                self.space.names
            )
        self._rng = np.random.default_rng([self.seed, len(self.history), 0x9B7])
        self._members: dict[int, _Member] = {}
        for trial in self.history:
            member = (trial.info or {}).get("member")
            generation = (trial.info or {}).get("generation")
            if not isinstance(member, int) or not isinstance(generation, int):
                continue  # not one of ours
            if not 0 <= member < o["population_size"] or not self.in_space(trial):
                continue
            self._members.setdefault(member, _Member()).segments.append(trial)
        # Members given a segment by this instance (not yet in the history).
        self._asked: set[int] = set()

    # --- the schedule -------------------------------------------------------------------

    def budget_of(self, generation: int) -> int:
        """The epoch a segment of ``generation`` trains up to."""
        return min(self.options["max_budget"], (generation + 1) * self.options["interval"])

    def _generation_of(self, trial: TrialRecord) -> int:
        return int(trial.info["generation"])

    def _done(self, member: _Member) -> bool:
        latest = member.latest
        return (
            _finished_well(latest)
            and self.budget_of(self._generation_of(latest)) >= self.options["max_budget"]
        )

    @property
    def exhausted(self) -> bool:
        """True once every member has completed a segment at ``max_budget``."""
        size = self.options["population_size"]
        return len(self._members) == size and all(self._done(m) for m in self._members.values())

    def ask(self, n: int) -> list[Suggestion]:
        """Up to ``n`` segments: first members yet to start, then the next segment of
        each member whose latest segment ended, oldest ending first."""
        self._check_n(n)
        out: list[Suggestion] = []
        busy = self._asked | {k for k, m in self._members.items() if m.latest.status in OPEN}
        for k in range(self.options["population_size"]):
            if len(out) < n and k not in self._members and k not in busy:
                out.append(self._fresh(k))
        ready = sorted(
            (m.latest.number, k)
            for k, m in self._members.items()
            if k not in busy and not self._done(m)
        )
        for _, k in ready[: n - len(out)]:
            out.append(self._next_segment(k))
        self._asked.update(s.info["member"] for s in out)
        return out

    def _fresh(self, member: int) -> Suggestion:
        params = self.space.sample(self._rng)
        info = {"member": member, "generation": 0, "budget": self.budget_of(0), "source": "random"}
        return Suggestion(params=params, info=info)

    def _next_segment(self, k: int) -> Suggestion:
        member = self._members[k]
        latest = member.latest
        if _finished_well(latest) and not self._in_bottom(k):
            return self._segment(k, latest, dict(latest.params), "continue")
        donor = self._donor(k)
        if donor is None:  # nothing completed anywhere: start this member afresh
            return self._fresh(k)
        parent, donor_k = donor
        params = self._explore(parent.params)
        suggestion = self._segment(k, parent, params, "exploit")
        suggestion.info["copied_from"] = donor_k
        return suggestion

    def _segment(
        self, k: int, parent: TrialRecord, params: dict[str, Any], source: str
    ) -> Suggestion:
        generation = self._generation_of(parent) + 1
        info = {
            "member": k,
            "generation": generation,
            "budget": self.budget_of(generation),
            "parent": parent.number,
            "source": source,
        }
        return Suggestion(params=params, info=info)

    # --- exploit ------------------------------------------------------------------------

    def _ranked(self) -> list[int]:
        """Members with a report, best first (ties: the lower member id); ranked once
        per instance: reports come from the history, which an ask never changes."""
        return list(self._ranking)

    @functools.cached_property
    def _ranking(self) -> tuple[int, ...]:
        scored = [
            (self.loss(v), k)
            for k, m in self._members.items()
            if (v := m.last_report()) is not None
        ]
        return tuple(k for _, k in sorted(scored))

    def _quantile_size(self, ranked: Sequence[int]) -> int:
        return round(len(ranked) * self.options["quantile"])

    def _in_bottom(self, k: int) -> bool:
        ranked = self._ranked()
        q = self._quantile_size(ranked)
        if len(ranked) < 2 or q == 0:
            return False
        return k in ranked[len(ranked) - q :] and k not in ranked[:q]

    def _donor(self, k: int) -> tuple[TrialRecord, int] | None:
        """A top-quantile member's newest completed segment and its id (never ``k``
        itself when another can be copied); None when no member completed anything."""
        ranked = [j for j in self._ranked() if self._members[j].newest_completed() is not None]
        if not ranked:
            own = self._members[k].newest_completed()
            return None if own is None else (own, k)
        top = [j for j in ranked[: max(1, self._quantile_size(ranked))] if j != k] or ranked[:1]
        j = top[int(self._rng.integers(len(top)))]
        parent = self._members[j].newest_completed()
        assert parent is not None
        return parent, j

    # --- explore ------------------------------------------------------------------------

    def _explore(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A perturbed copy of ``params`` (module doc), made whole again for a
        conditional space: newly active parameters are drawn, inactive ones dropped."""
        out = dict(params)
        for name in self.options["mutable"]:
            if name in out:
                out[name] = self._perturb(self.space[name], out[name])
        for name in self.space.active_names(out):
            if name not in out:
                out[name] = self.space[name].sample(self._rng)
        return self.space.project(out)

    def _perturb(self, p: Param, value: Any) -> Any:
        rng, o = self._rng, self.options
        if rng.random() < o["resample_probability"]:
            return p.sample(rng)
        up = bool(rng.random() < 0.5)
        if isinstance(p, CategoricalParam):
            index = [p.canonical(c) for c in p.choices].index(p.canonical(value))
            step = 1 if up else -1
            if not 0 <= index + step < len(p.choices):
                step = -step
            return p.choices[min(max(index + step, 0), len(p.choices) - 1)]
        factor = 1.0 + o["perturb_factor"] if up else 1.0 - o["perturb_factor"]
        if isinstance(p, FloatParam):
            return min(max(float(value) * factor, p.low), p.high)
        assert isinstance(p, IntParam)
        return _perturb_int(p, int(value), factor, up)


def _perturb_int(p: IntParam, value: int, factor: float, up: bool) -> int:
    """``value * factor`` on ``p``'s lattice; one step in that direction when it rounds
    back onto ``value`` (so a small int still moves), reflected at the bounds."""
    k_old = (value - p.low) // p.step
    k = round((value * factor - p.low) / p.step)
    if k == k_old:
        k = k_old + (1 if up else -1)
    if not 0 <= k < p.count:
        k = k_old - (1 if up else -1) if p.count > 1 else k_old
    return int(p.low + min(max(k, 0), p.count - 1) * p.step)


def lineage(history: Sequence[TrialRecord], number: int) -> list[TrialRecord]:
    """The segments that led to trial ``number``, first segment first: its parent, the
    parent's parent, and so on (a member that copied another continues that member's
    lineage). Stops at a trial that is missing or has no parent."""
    by_number = {t.number: t for t in history}
    chain: list[TrialRecord] = []
    seen: set[int] = set()
    current = by_number.get(number)
    while current is not None and current.number not in seen:
        chain.append(current)
        seen.add(current.number)
        parent = (current.info or {}).get("parent")
        current = by_number.get(parent) if isinstance(parent, int) else None
    return chain[::-1]
