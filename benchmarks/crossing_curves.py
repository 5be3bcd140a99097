"""Crossing-curve benchmark: epochs a multi-fidelity method needs to match random search,
on generated learning curves where fast starters finish behind.

    python -m benchmarks.crossing_curves [--seeds 10] [--families exp,power,overfit,noisy]
        [--methods hyperband,asha,...] [--random-trials 40] [--max-budget 27] [--eta 3]
        [--cap 4] [--jobs 1] [--smoke]

Each seed draws a task: a map from a configuration of ``benchmarks.multi_fidelity``'s
MLP space (learning rate, batch size, decay, optimizer, dropout, layers, units) to a
learning curve. A hidden *speed* (mostly the learning rate, with weights drawn per seed)
sets how fast a curve rises; the *ceiling* it rises to peaks at a speed drawn per seed
and falls away on both sides, so the fastest starters lead early and finish behind,
and the curves cross, as high learning rates do in deep learning. Families:

* ``exp``: ``ceiling * (1 - exp(-speed t))``;
* ``power``: a power law, ``ceiling - (ceiling - 0.1) (1 + speed t)^-0.7``;
* ``overfit``: ``exp``, then a decline once ``speed t`` passes a point drawn per seed
  (the fastest overfit first);
* ``noisy``: ``exp`` plus validation noise of 0.01 per epoch (a function of the
  configuration and the epoch, so a resumed curve sees the same noise).

Random search trains ``--random-trials`` configurations with the full budget; its best
final value is the target and its epochs the unit. Each method (ours, driven as
``benchmarks.multi_fidelity`` drives them, promotions resuming from the parent's
checkpoint; and, named in ``--methods`` where syne_tune is installed, the Syne Tune
peers of ``benchmarks.syne_peers``: ASHA, BOHB, DEHB, Hyper-Tune, resuming paused trials
from their checkpoint) runs until a trial ends at or above the target, or it has spent
``--cap`` x random's epochs. ``--jobs`` runs (family, seed) tasks in parallel processes;
the figures do not depend on it. Printed per family and seed: each method's epochs over
random's (``-`` where it never matched), then per family the median and how many seeds
never matched. The issue's target: every default (hyperband, asha) matches in every
seed within 2x random's epochs.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks import syne_peers
from benchmarks.multi_fidelity import SPACES, run_ours, run_random
from search import SearchSpace, get_strategy

__all__ = ["FAMILIES", "CurveTask", "main", "make_task"]

FAMILIES = ("exp", "power", "overfit", "noisy")
METHODS = ("hyperband", "asha", "hyperband (random)", "asha (random)")
#: What ``--methods`` takes besides ours: Syne Tune's peers, run where syne_tune imports;
#: not by default (Hyper-Tune's GP fits cost minutes per task).
PEERS = syne_peers.PEERS
SPACE_DICT = SPACES["mlp"]
SPACE = SearchSpace.from_dict(SPACE_DICT)


@dataclass(frozen=True)
class CurveTask:
    """One seed's map from configurations to learning curves (module doc)."""

    family: str
    weights: dict[str, float]
    best_speed: float
    width: float
    overfit_at: float
    seed: int

    def speed(self, params: Mapping[str, Any]) -> float:
        """The hidden speed: log-linear in the learning rate and the other numbers."""
        z = self.weights["lr"] * math.log10(params["lr"] / 1e-4) / 3.5
        z += self.weights["batch_size"] * (1.0 - math.log2(params["batch_size"] / 32) / 3.0)
        z += self.weights["decay"] * -math.log10(params["decay"] / 1e-5) / 4.0
        z += self.weights["units"] * math.log2(params["units"] / 16) / 4.0
        z += self.weights["adam"] * (params["optimizer"] == "adam")
        return 0.02 * math.exp(4.0 * z)

    def ceiling(self, params: Mapping[str, Any]) -> float:
        """The value a configuration rises to: highest at ``best_speed``."""
        gap = math.log(self.speed(params) / self.best_speed) / self.width
        layers = 0.01 * (params["hidden_layers"] - 2) ** 2
        return 0.95 - 0.35 * (1.0 - math.exp(-(gap**2))) - 0.1 * params["dropout"] ** 2 - layers

    def value(self, params: Mapping[str, Any], epoch: int) -> float:
        """The validation value after ``epoch`` epochs."""
        speed, top = self.speed(params), self.ceiling(params)
        if self.family == "power":
            return top - (top - 0.1) * (1.0 + speed * epoch) ** -0.7
        rise = top * (1.0 - math.exp(-speed * epoch))
        if self.family == "overfit":
            return rise - 0.15 * max(0.0, math.log(speed * epoch / self.overfit_at))
        if self.family == "noisy":
            return rise + 0.01 * _noise(self.seed, params, epoch)
        return rise


def _noise(seed: int, params: Mapping[str, Any], epoch: int) -> float:
    """A standard normal draw fixed by the seed, the configuration and the epoch."""
    key = repr((seed, sorted(params.items()), epoch)).encode()
    digest = int.from_bytes(hashlib.sha256(key).digest()[:8], "little")
    return float(np.random.default_rng(digest).normal())


def make_task(family: str, seed: int) -> CurveTask:
    """The task of ``family`` and ``seed``: speed weights, where the ceiling peaks and
    how wide, and where overfitting starts, all drawn from the seed."""
    rng = np.random.default_rng([seed, FAMILIES.index(family), 0xC055])
    weights = {
        "lr": float(rng.uniform(0.6, 1.0)),
        "batch_size": float(rng.uniform(0.0, 0.25)),
        "decay": float(rng.uniform(0.0, 0.15)),
        "units": float(rng.uniform(0.0, 0.2)),
        "adam": float(rng.uniform(0.0, 0.3)),
    }
    return CurveTask(
        family=family,
        weights=weights,
        best_speed=float(0.02 * math.exp(4.0 * rng.uniform(0.25, 0.55))),
        width=float(rng.uniform(0.8, 1.6)),
        overfit_at=float(rng.uniform(3.0, 8.0)),
        seed=seed,
    )


class CurveTrainer:
    """``benchmarks.multi_fidelity.Trainer.run`` for a :class:`CurveTask`: a curve is a
    function of the configuration and the epoch, so a checkpoint is just its epoch."""

    def __init__(self, task: CurveTask) -> None:
        self.task = task

    def seed_for(self, seed: int, number: int) -> int:
        return seed

    def run(
        self,
        params: Mapping[str, Any],
        budget: int,
        start: tuple[Any, int] | None,
        seed: int,
        on_epoch: Callable[[Any], Any] | None = None,
    ) -> tuple[float | None, tuple[Any, int] | None, int]:
        first = 1 if start is None else start[1] + 1
        if first > budget:
            return None, start, 0
        return self.task.value(params, budget), (None, budget), budget - first + 1


def run_family_seed(family: str, seed: int, args: argparse.Namespace) -> dict[str, float | None]:
    """Each method's epochs over random's on one task (None: never matched)."""
    trainer = CurveTrainer(make_task(family, seed))
    target, outcome = run_random(trainer, SPACE, seed, args.random_trials, args.max_budget)  # type: ignore[arg-type]
    unit = outcome.epochs_spent
    out: dict[str, float | None] = {}
    for label in args.methods:
        if label in PEERS:
            cap = int(args.cap * unit)
            got = syne_peers.run_syne(
                label, trainer, SPACE, seed, target, cap, args.max_budget, args.eta
            )
            out[label] = None if got.epochs_to_match is None else got.epochs_to_match / unit
            continue
        name, _, rest = label.partition(" (")
        sampler = rest.rstrip(")") or get_strategy(name).default_sampler
        options = {"max_budget": args.max_budget, "eta": args.eta, "sampler": sampler}
        got = run_ours(trainer, SPACE, name, options, seed, target, int(args.cap * unit))  # type: ignore[arg-type]
        out[label] = None if got.epochs_to_match is None else got.epochs_to_match / unit
    return out


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated, of: {', '.join((*METHODS, *PEERS))}",
    )
    parser.add_argument("--random-trials", type=int, default=40)
    parser.add_argument("--max-budget", type=int, default=27)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--cap", type=float, default=4.0)
    parser.add_argument("--jobs", type=int, default=1, help="tasks run in this many processes")
    parser.add_argument(
        "--smoke", action="store_true", help="1 seed, 8 random trials of 9 epochs, cap 2"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.random_trials, args.max_budget, args.cap = 1, 8, 9, 2.0
    args.families = args.families.split(",")
    args.methods = args.methods.split(",")
    bad = [f for f in args.families if f not in FAMILIES]
    bad += [m for m in args.methods if m not in METHODS + PEERS]
    if bad:
        parser.error(f"unknown {bad}; families {FAMILIES}, methods {METHODS + PEERS}")
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    missing = [m for m in args.methods if m in PEERS]
    if missing and not syne_peers.available():
        print(f"syne_tune is not installed: {', '.join(missing)} left out", file=sys.stderr)
        args.methods = [m for m in args.methods if m not in missing]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    print(
        f"== crossing curves: {args.random_trials} random trials of {args.max_budget} epochs "
        f"set the target; cap {args.cap:g}x random's epochs; eta {args.eta}"
    )
    done: dict[tuple[str, int], dict[str, float | None]] = {}
    if args.jobs > 1:  # else each family is computed where it is printed
        tasks = [(family, seed) for family in args.families for seed in range(args.seeds)]
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(run_family_seed, f, s, args) for f, s in tasks]
            done = {task: future.result() for task, future in zip(tasks, futures, strict=True)}
    for family in args.families:
        rows = {
            seed: done[family, seed] if done else run_family_seed(family, seed, args)
            for seed in range(args.seeds)
        }
        print(f"-- {family}: epochs / random's, per seed")
        for label in args.methods:
            got = [rows[s][label] for s in range(args.seeds)]
            cells = " ".join("   -" if g is None else f"{g:4.2f}" for g in got)
            matched = [g if g is not None else math.inf for g in got]
            median = statistics.median(matched)
            never = sum(g is None for g in got)
            print(
                f"{label:<18} median {median:5.2f}  never {never}/{args.seeds}  "
                f"within 2x {sum(g is not None and g <= 2 for g in got)}/{args.seeds}  {cells}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
