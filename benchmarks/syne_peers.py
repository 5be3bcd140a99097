"""Syne Tune's multi-fidelity schedulers as peers of our hyperband and asha.

The benchmarks (``benchmarks.multi_fidelity``, ``benchmarks.crossing_curves``,
``benchmarks.multi_fidelity_replay``) run these beside ours when ``syne_tune`` imports
(``make install`` leaves it out; the dev install adds it, see the Makefile):

* ``syne ASHA``: ``legacy_baselines.ASHA``, ``type="promotion"`` (pause and resume, as
  our asha promotes from a checkpoint), one bracket, random configurations;
* ``syne BOHB``: ``legacy_baselines.BOHB`` (asynchronous BOHB: ASHA with a kernel
  density searcher), ``type="promotion"``, one bracket;
* ``syne DEHB``: ``legacy_baselines.DEHB`` (synchronous Hyperband with differential
  evolution), every bracket (its default);
* ``syne Hyper-Tune``: ``legacy_baselines.HyperTune`` (independent GPs per rung,
  learned bracket distribution), ``type="promotion"``, one bracket per rung level.

All are Syne Tune's classes with their defaults otherwise (for instance the first
configuration of each is the midpoint of the space), seeded with the run's seed, over
``epoch`` with ``max_t`` = the full budget, grace period 1 and reduction factor eta,
maximizing ``val_accuracy``. These classes are in syne-tune 0.14.2, the last release
that has DEHB, Hyper-Tune and promotion-type ASHA (0.15 removed them).

:func:`run_syne` drives a scheduler in-process, synchronously, one trial at a time, as
Syne Tune's ``Tuner`` would with one worker, without a Tuner or a backend: ``suggest``,
then one epoch after another reported through ``on_trial_result`` until the scheduler
answers ``PAUSE`` or ``STOP`` (then ``on_trial_remove``) or the trial reaches ``max_t``
(then ``on_trial_complete``); a diverged trial is ``on_trial_error``. A resumed trial
(or a new one started from another's checkpoint) continues from the checkpoint it
paused with: only epochs it trains anew count, as for our promotions.

Counting is ``benchmarks.multi_fidelity``'s: every trained epoch counts; a trial is
credited with the value it ends a run of epochs with (where the scheduler paused or
stopped it, at ``max_t``, or where the run hit its cap), and the target is matched at
the first such value at or above it, with the epochs spent by then. ``resume_saved``
adds the epochs a resumed trial did not retrain, ``promoted_budget`` the epochs it
reaches, so the tables' resume columns read as for ours.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from search import SearchSpace
from search.params import CategoricalParam, FloatParam

if TYPE_CHECKING:
    from benchmarks.multi_fidelity import Outcome

__all__ = [
    "METRIC",
    "PEERS",
    "RESOURCE",
    "available",
    "config_space",
    "run_syne",
    "scheduler",
    "table_snap",
]

#: The benchmarks' labels of the Syne Tune peers, in table order.
PEERS = ("syne ASHA", "syne BOHB", "syne DEHB", "syne Hyper-Tune")
METRIC = "val_accuracy"
RESOURCE = "epoch"


class EpochTrainer(Protocol):
    """What the benchmarks' trainers share (``benchmarks.multi_fidelity.Trainer``):
    ``run`` trains ``params`` up to epoch ``budget`` from ``start`` (a checkpoint and
    its epoch, or None) and returns (value or None if it diverged, checkpoint, epochs
    trained)."""

    def seed_for(self, seed: int, number: int) -> int: ...

    def run(
        self, params: Mapping[str, Any], budget: int, start: Any, seed: int
    ) -> tuple[float | None, Any, int]: ...


def available() -> bool:
    """True when Syne Tune's legacy schedulers import (the peers run only then)."""
    try:
        import syne_tune.optimizer.legacy_baselines  # noqa: F401
    except ImportError:
        return False
    return True


def config_space(space: SearchSpace) -> dict[str, Any]:
    """Our space as a Syne Tune config space: float -> (log)uniform, int ->
    (log)randint (an ordinal of its values with a step), categorical -> choice. Syne Tune
    has no conditions: every parameter is in every configuration, and
    :func:`run_syne` trains only the active ones (``SearchSpace.project``)."""
    from syne_tune import config_space as cs

    out: dict[str, Any] = {}
    for p in space:
        if isinstance(p, CategoricalParam):
            out[p.name] = cs.choice(list(p.choices))
        elif isinstance(p, FloatParam):
            out[p.name] = (cs.loguniform if p.log else cs.uniform)(p.low, p.high)
        elif p.step != 1:
            if p.log:
                raise ValueError(f"{p.name}: a log int with a step has no Syne Tune domain")
            out[p.name] = cs.ordinal(list(range(p.low, p.high + 1, p.step)))
        else:
            out[p.name] = (cs.lograndint if p.log else cs.randint)(p.low, p.high)
    return out


def _rungs(max_t: int, eta: int, min_t: int = 1) -> int:
    """How many rung levels min_t, min_t eta, min_t eta^2, ... up to ``max_t`` (max_t
    counted once)."""
    levels, level = 1, min_t * eta
    while level < max_t:
        levels, level = levels + 1, level * eta
    return levels


def scheduler(
    label: str, space: SearchSpace, max_t: int, eta: int, seed: int, min_t: int = 1
) -> Any:
    """The Syne Tune scheduler named ``label`` (one of :data:`PEERS`), as the module
    doc describes it, with grace period ``min_t``."""
    from syne_tune.optimizer import legacy_baselines as lb

    for name in ("syne_tune", "syne_tune.optimizer"):
        logging.getLogger(name).setLevel(logging.ERROR)  # "use max_resource_attr" advice
    common: dict[str, Any] = {
        "metric": METRIC,
        "resource_attr": RESOURCE,
        "mode": "max",
        "random_seed": seed,
        "grace_period": min_t,
        "reduction_factor": eta,
    }
    cfg = config_space(space)
    if label == "syne DEHB":
        return lb.DEHB(cfg, max_resource_level=max_t, **common)
    promotion = {**common, "type": "promotion", "max_t": max_t}
    if label == "syne ASHA":
        return lb.ASHA(cfg, brackets=1, **promotion)
    if label == "syne BOHB":
        return lb.BOHB(cfg, brackets=1, **promotion)
    if label == "syne Hyper-Tune":
        return lb.HyperTune(cfg, brackets=_rungs(max_t, eta, min_t), **promotion)
    raise ValueError(f"unknown Syne Tune peer {label!r}; one of {', '.join(PEERS)}")


class _Table(Protocol):
    """``benchmarks.multi_fidelity_replay.Table``: its rows' parameters, and the untried
    row nearest to a proposal."""

    params: list[dict[str, Any]]

    def nearest(self, params: Mapping[str, Any], tried: set[int]) -> int: ...


def table_snap(table: _Table) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A ``snap`` for :func:`run_syne` over a table of recorded curves: each new trial
    trains the untried row nearest to the scheduler's proposal (as the replay snaps
    our model-based proposals), so every trial is a row with a curve."""
    tried: set[int] = set()

    def snap(params: dict[str, Any]) -> dict[str, Any]:
        row = table.nearest(params, tried)
        tried.add(row)
        return dict(table.params[row])

    return snap


@dataclass
class _Trial:
    """What the driver keeps per Syne Tune trial: Syne's record, the parameters it
    trains, its training seed, and its checkpoint (None before its first epoch)."""

    record: Any
    params: dict[str, Any]
    seed: int
    checkpoint: Any = None  # the trainer's state after epoch ``done``
    done: int = 0


def run_syne(
    label: str,
    trainer: EpochTrainer,
    space: SearchSpace,
    seed: int,
    target: float,
    cap: int,
    budget: int,
    eta: int,
    snap: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    min_budget: int = 1,
) -> Outcome:
    """Peer ``label`` until a trial ends a run of epochs at ``target`` or better, or
    ``cap`` epochs are spent (module doc), over rungs from ``min_budget`` to ``budget``.
    ``snap`` maps a new trial's active parameters to the ones trained (the replay
    snaps them to its table's rows: :func:`table_snap`)."""
    sched = scheduler(label, space, budget, eta, seed, min_budget)
    quiet = _FromSyneTune()
    root = logging.getLogger()
    root.addFilter(quiet)  # BOHB logs "candidate has non finite acquisition" on the root
    try:
        with warnings.catch_warnings():
            # the numeric warnings of BOHB's kernel density fits (statsmodels, pandas, its own)
            warnings.filterwarnings("ignore", module="statsmodels|pandas|syne_tune")
            return _drive(sched, trainer, space, seed, target, cap, budget, snap)
    finally:
        root.removeFilter(quiet)


class _FromSyneTune(logging.Filter):
    """Drops the records Syne Tune's code logs on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "syne_tune" not in record.pathname


def _drive(
    sched: Any,
    trainer: EpochTrainer,
    space: SearchSpace,
    seed: int,
    target: float,
    cap: int,
    max_t: int,
    snap: Callable[[dict[str, Any]], dict[str, Any]] | None,
) -> Outcome:
    from syne_tune.backend.trial_status import Trial
    from syne_tune.optimizer.scheduler import SchedulerDecision

    from benchmarks.multi_fidelity import Outcome

    trials: dict[int, _Trial] = {}
    spent, saved, promoted, best = 0, 0, 0, 0.0
    while spent < cap:
        suggestion = sched.suggest(len(trials))
        if suggestion is None:  # the scheduler has nothing left to try
            break
        resumed = not suggestion.spawn_new_trial_id
        if resumed:
            trial = trials[suggestion.checkpoint_trial_id]
            if suggestion.config is not None:
                trial.record.config = suggestion.config
        else:
            number = len(trials)
            config = dict(suggestion.config)
            params = space.project(config)
            record = Trial(trial_id=number, config=config, creation_time=datetime.now())
            trial = _Trial(record, snap(params) if snap else params, trainer.seed_for(seed, number))
            parent = trials.get(suggestion.checkpoint_trial_id)  # a warm start, if any
            if parent is not None:
                trial.checkpoint, trial.done, resumed = parent.checkpoint, parent.done, True
            trials[number] = trial
            sched.on_trial_add(record)
        if resumed:
            saved += trial.done
        value: float | None = None
        while True:  # one epoch at a time, as long as the scheduler lets it continue
            epoch = trial.done + 1
            start = None if trial.done == 0 else (trial.checkpoint, trial.done)
            value, checkpoint, trained = trainer.run(trial.params, epoch, start, trial.seed)
            spent += trained
            if value is None:  # diverged: Syne Tune's failed trial
                sched.on_trial_error(trial.record)
                break
            trial.checkpoint, trial.done = checkpoint[0], epoch
            result = {RESOURCE: epoch, METRIC: value}
            decision = sched.on_trial_result(trial.record, result)
            if epoch >= max_t and decision == SchedulerDecision.CONTINUE:
                sched.on_trial_complete(trial.record, result)  # its script ends
                break
            if decision != SchedulerDecision.CONTINUE:
                sched.on_trial_remove(trial.record)  # what the Tuner does on pause/stop
                break
            if spent >= cap:
                break
        if resumed:
            promoted += trial.done
        if value is not None:
            best = max(best, value)
            if value >= target:
                return Outcome(spent, spent, saved, best, promoted)
    return Outcome(None, spent, saved, best, promoted)
