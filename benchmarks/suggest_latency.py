"""Suggest-latency benchmark: seconds to get one suggestion from a history of N completed
trials, for every registered strategy, against plain scikit-optimize and Optuna's
GPSampler, on the same 6-D mixed space and the same histories, in the same run.

    python -m benchmarks.suggest_latency [--sizes 50,200,500] [--repeats 3]
        [--blas-threads N] [--smoke]

What is timed, per method and N (median over ``--repeats``):

* ours (every strategy in ``search.STRATEGIES``; Hyperband and ASHA with
  ``max_budget: 27`` epochs, their only required option): ``make_strategy(...)`` from
  the N trials plus ``ask(1)``, as the server does on every scheduling pass. The GP's
  kernel cache is cleared first (a cold fit: the cost right after a trial completes);
  the ``bayes (warm)`` row is the next pass, with the same completed trials and one
  more in flight, where the cached kernel is reused. Hyperband and ASHA are timed on
  histories they made themselves (``own_history``: rungs, promotions and their default
  samplers, as in a study), cut where their next ask proposes a new configuration, from
  the model where they have one (``costly_prefix``; at most N trials); the others on the
  N random points every peer gets.
* ``skopt-gp``: ``skopt.Optimizer(base_estimator="GP", acq_func="gp_hedge")`` told all
  N points in one ``tell(xs, ys)`` (one fit) then one ``ask()``. Its ``tell`` fits the GP
  and optimizes the acquisition; ``ask()`` alone just returns that cached point, so
  both are timed together.
* ``optuna-gp`` (when optuna is installed: ``pip install 'hpo-service[bench]'``): a fresh
  ``GPSampler`` study holding the N trials (``add_trials``, untimed) and one
  ``study.ask(distributions)``, which runs the sampler's fit and acquisition.

Ratios are each row over ``skopt-gp`` at the same N (below 1 is faster). Timings depend
heavily on the BLAS thread pool on a busy machine: ``--blas-threads 1`` pins every
method to one thread (threadpoolctl), as a server sharing its cores should.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np

from search import STRATEGIES, OptionError, SearchSpace, SpaceError, TrialRecord, make_strategy
from search.gp import clear_cache

__all__ = ["OPTIONS", "SPACE", "costly_prefix", "history", "main", "own_history", "time_methods"]

SPACE = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "layers": {"type": "int", "low": 1, "high": 6},
        "units": {"type": "int", "low": 16, "high": 512, "step": 16},
        "batch": {"type": "int", "low": 8, "high": 1024, "log": True},
        "optimizer": ["adam", "sgd", "rmsprop"],
    }
)
SEED = 7
Timer = Callable[[list[TrialRecord]], float]
#: What a strategy needs besides the space: the multi-fidelity ones a budget in epochs.
OPTIONS: dict[str, dict[str, Any]] = {
    "hyperband": {"max_budget": 27},
    "asha": {"max_budget": 27},
    "pbt": {"max_budget": 27},
}
#: Runs of the strategies in OPTIONS, by name (``own_history``).
_OWN: dict[str, list[TrialRecord]] = {}


def objective(p: dict[str, Any]) -> float:
    """A smooth, deterministic stand-in for a validation loss."""
    return (
        (math.log10(p["lr"]) + 3) ** 2
        + 10 * (p["dropout"] - 0.2) ** 2
        + 0.3 * abs(p["layers"] - 3)
        + ((p["units"] - 256) / 256) ** 2
        + 0.1 * math.log2(p["batch"] / 64) ** 2
        + {"adam": 0.0, "sgd": 0.4, "rmsprop": 0.2}[p["optimizer"]]
    )


def history(n: int) -> list[TrialRecord]:
    """``n`` completed trials at seeded random points (the same for every method)."""
    rng = np.random.default_rng(n)
    points = [SPACE.sample(rng) for _ in range(n)]
    return [TrialRecord(i, p, "completed", objective(p)) for i, p in enumerate(points)]


def own_history(name: str, n: int) -> list[TrialRecord]:
    """The first ``n`` trials of a run of strategy ``name`` (with ``OPTIONS[name]``)
    asked one at a time, each completed at once on ``objective`` plus ``1 / budget``
    (longer training, lower loss): the history a multi-fidelity strategy meets in a
    study. The run is kept and extended, so every size is a prefix of one run."""
    trials, options = _OWN.setdefault(name, []), OPTIONS.get(name, {})
    while len(trials) < n:
        s = make_strategy(name, SPACE, trials, seed=SEED, options=options).ask(1)[0]
        value = objective(s.params) + 1.0 / int(s.info.get("budget", 1))
        trials.append(TrialRecord(len(trials), s.params, "completed", value, info=s.info))
    return trials[:n]


def costly_prefix(name: str, n: int) -> list[TrialRecord]:
    """The longest prefix, of at most ``n`` trials, of the strategy's own run after
    which it proposes a new configuration, from its model where it used one: the
    costly ask (a promotion only looks up a rung)."""
    run = own_history(name, n + 1)  # run[k] is what the strategy asked after run[:k]
    new = [k for k in range(1, n + 1) if "source" in run[k].info]
    model = [k for k in new if run[k].info["source"] == "model"]
    return run[: max(model or new or [n])]


def _ours(name: str) -> Timer:
    def timed(trials: list[TrialRecord]) -> float:
        if name in OPTIONS:
            trials = costly_prefix(name, len(trials))
        clear_cache()
        started = time.perf_counter()
        make_strategy(name, SPACE, trials, seed=SEED, options=OPTIONS.get(name, {})).ask(1)
        return time.perf_counter() - started

    return timed


def _bayes_warm(trials: list[TrialRecord]) -> float:
    first = make_strategy("bayes", SPACE, trials, seed=SEED).ask(1)[0]
    in_flight = [*trials, TrialRecord(len(trials), first.params, "running")]
    started = time.perf_counter()
    make_strategy("bayes", SPACE, in_flight, seed=SEED).ask(1)
    return time.perf_counter() - started


def _skopt(trials: list[TrialRecord]) -> float:
    from skopt import Optimizer
    from skopt.space import Categorical, Integer, Real

    dims = [
        Real(1e-5, 1e-1, prior="log-uniform"),
        Real(0.0, 0.5),
        Integer(1, 6),
        Integer(0, 31),  # units 16..512 step 16, as a lattice index
        Integer(8, 1024, prior="log-uniform"),
        Categorical(["adam", "sgd", "rmsprop"]),
    ]
    names = ("lr", "dropout", "layers", "units", "batch", "optimizer")
    xs = [[t.params[k] for k in names] for t in trials]
    for x in xs:
        x[3] = (x[3] - 16) // 16
    ys = [float(t.value) for t in trials if t.value is not None]
    started = time.perf_counter()
    opt = Optimizer(dims, "GP", acq_func="gp_hedge", n_initial_points=1, random_state=SEED)
    opt.tell(xs, ys)
    opt.ask()
    return time.perf_counter() - started


def _optuna(trials: list[TrialRecord]) -> float:
    import optuna
    from optuna.distributions import CategoricalDistribution as Cat
    from optuna.distributions import FloatDistribution as Float
    from optuna.distributions import IntDistribution as Int

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {
        "lr": Float(1e-5, 1e-1, log=True),
        "dropout": Float(0.0, 0.5),
        "layers": Int(1, 6),
        "units": Int(16, 512, step=16),
        "batch": Int(8, 1024, log=True),
        "optimizer": Cat(["adam", "sgd", "rmsprop"]),
    }
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=SEED))
    study.add_trials(
        [
            optuna.trial.create_trial(params=dict(t.params), distributions=dists, value=t.value)
            for t in trials
        ]
    )
    started = time.perf_counter()
    study.ask(dists)
    return time.perf_counter() - started


def methods() -> tuple[dict[str, Timer], list[str]]:
    """The timed methods by row name, and notes on the ones skipped."""
    rows: dict[str, Timer] = {}
    notes: list[str] = []
    for name in sorted(STRATEGIES):
        try:
            make_strategy(name, SPACE, (), options=OPTIONS.get(name, {}))
        except (OptionError, SpaceError) as err:
            notes.append(f"skipped {name}: {err}")
            continue
        rows[name] = _ours(name)
        if name == "bayes":
            rows["bayes (warm)"] = _bayes_warm
    rows["skopt-gp"] = _skopt
    try:
        import optuna

        rows["optuna-gp"] = _optuna
        notes.append(f"optuna {optuna.__version__}")
    except ImportError:
        notes.append("optuna not installed (pip install 'hpo-service[bench]'): no optuna-gp row")
    return rows, notes


def time_methods(
    rows: dict[str, Timer], sizes: Sequence[int], repeats: int
) -> dict[str, dict[int, float]]:
    """Median seconds per method and size."""
    out: dict[str, dict[int, float]] = {name: {} for name in rows}
    for n in sizes:
        trials = history(n)
        for name, timer in rows.items():
            out[name][n] = statistics.median(timer(trials) for _ in range(repeats))
            print(f"  {name} N={n}: {out[name][n]:.3f}s", file=sys.stderr, flush=True)
    return out


def table(results: dict[str, dict[int, float]], sizes: Sequence[int]) -> str:
    """Seconds per suggestion, then ratios to skopt-gp, one row per method."""
    width = max(len(name) for name in results) + 2
    head = "method".ljust(width) + "".join(f"{f'N={n}':>10}" for n in sizes)
    head += "".join(f"{f'x@{n}':>10}" for n in sizes)
    lines = [head]
    base = results.get("skopt-gp", {})
    for name, by_size in results.items():
        cells = "".join(f"{by_size[n]:>10.3f}" for n in sizes)
        ratios = "".join(
            f"{by_size[n] / base[n]:>10.3f}" if base.get(n) else f"{'-':>10}" for n in sizes
        )
        lines.append(name.ljust(width) + cells + ratios)
    return "\n".join(lines)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suggest_latency")
    parser.add_argument("--sizes", default="50,200,500", help="completed trials, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--blas-threads", type=int, default=None, help="pin BLAS threads")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat (CI)")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if args.smoke:
        # 12 trials: past bayes' 10-point design, so the model path runs too.
        args.sizes, args.repeats = [5, 12], 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    args = _parse(argv)
    limit: Any = nullcontext()
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(limits=args.blas_threads, user_api="blas")
    rows, notes = methods()
    with limit, warnings.catch_warnings():
        # Peers warn about experimental APIs and re-evaluated points; not our subject.
        warnings.simplefilter("ignore")
        results = time_methods(rows, args.sizes, args.repeats)
    blas = "default BLAS threads"
    if args.blas_threads is not None:
        blas = f"{args.blas_threads} BLAS thread(s)"
    print(
        f"\n== suggest latency: seconds per suggestion, 6-D mixed space, "
        f"median of {args.repeats}, {blas}{', smoke' if args.smoke else ''} =="
    )
    print(table(results, args.sizes))
    print("x@N: ratio to skopt-gp at N (below 1 is faster)")
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
