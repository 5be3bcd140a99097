"""Search-quality benchmark: normalized regret of every registered strategy against
Optuna's GPSampler, TPE and random samplers, on the same problems and seeds, in the same
run.

    python -m benchmarks.search_quality [--suite tune|holdout|all] [--problems a,b]
        [--seeds 10] [--budgets 50,100] [--parallel 1] [--jobs 1] [--methods ...] [--smoke]

Problems (``benchmarks.problems``): standard functions of 2 to 20 dimensions (smooth,
multimodal, ill-conditioned), mixed integer/categorical and conditional spaces, and
model tuning on bundled data (SVM, random forest, gradient boosting, a torch MLP). The
``tune`` suite is what strategies were developed against; ``holdout`` is kept out of
that (``--suite all``: both). After the tables, one line per budget counts the problems
where ``bayes``'s median regret is at least as good as GPSampler's.

Our strategies are driven the way the server drives them: rebuilt from the history
before every ask, ``ask(k)`` for the ``k`` free worker slots (``--parallel`` slots; the
oldest trial in flight finishes first), each suggestion appended to the history as a
running ``TrialRecord`` carrying its ``info`` and turned completed (or failed) when
evaluated. Every strategy in ``search.STRATEGIES`` that can be built with default options
takes part; ones that need options (multi-fidelity strategies need ``max_budget``) are
listed as skipped. Early-stopping decisions are not exercised: every trial runs to the end.

Regret after ``b`` evaluations is ``(best of the first b values - f*) / (m - f*)``, where
``m`` is the median value of random points (a fixed reference sample drawn in the run) and
``f*`` the known minimum or, when none is known (digits), the best value seen anywhere in
the run (reference sample and every method). 0 means the optimum; 1 means no better than
a typical random point. Tables give the median over seeds and ratios to Optuna TPE and
to our random strategy (below 1 is better). Nothing here is tuned to these problems.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from benchmarks.problems import PROBLEMS, SUITES, Problem, make_problem, suite_problems
from search import STRATEGIES, OptionError, SpaceError, TrialRecord, make_strategy
from server.lookahead import Lookahead, spare_count

__all__ = ["OPTUNA_PEERS", "Run", "main", "regret_table", "run_method"]

OPTUNA_PEERS: tuple[str, ...] = ("optuna-gp", "optuna-tpe", "optuna-random")
#: ``--methods bayes-ahead``: bayes driven as the server drives it when its asks are the
#: bottleneck (suggestions asked ahead, ``server.lookahead``); meaningful with --parallel.
AHEAD = "bayes-ahead"
REFERENCE_SEED = 20_240_601
#: --smoke: one problem of each kind (2-D to 20-D functions, mixed, conditional, models).
SMOKE_PROBLEMS = (
    "branin",
    "hartmann6",
    "ellipsoid20",
    "mixed_levy",
    "conditional",
    "svm",
    "digits",
)
Values = list["float | None"]


@dataclass(frozen=True)
class Run:
    """One method on one problem with one seed: the values in completion order (None
    for a failed evaluation) and the seconds spent inside the method (not evaluating)."""

    problem: str
    method: str
    seed: int
    values: Values
    method_seconds: float


@functools.cache
def _problem(name: str, smoke: bool) -> Problem:
    return make_problem(name, smoke=smoke)


# Per-process memo: grid and categorical-heavy methods revisit points, and a digits
# evaluation is deterministic and costs a training run.
_memo: dict[tuple[str, tuple[tuple[str, str], ...]], float | None] = {}


def _evaluate(problem: Problem, params: Mapping[str, Any]) -> float | None:
    key = (problem.name, tuple(sorted((k, repr(v)) for k, v in params.items())))
    if key not in _memo:
        _memo[key] = problem.objective(params)
    return _memo[key]


def usable_strategies(problem: Problem) -> tuple[list[str], dict[str, str]]:
    """Registered strategies buildable with default options on ``problem``, and why
    the others are skipped."""
    usable, skipped = [], {}
    for name in sorted(STRATEGIES):
        try:
            make_strategy(name, problem.space, (), options={})
        except (OptionError, SpaceError) as err:
            skipped[name] = str(err)
        else:
            usable.append(name)
    return usable, skipped


def _drive_ours(
    name: str, problem: Problem, seed: int, budget: int, parallel: int, ahead: bool = False
) -> tuple[Values, float]:
    """``ahead``: as the scheduler drives a study whose asks are its bottleneck
    (``server.lookahead``): each ask is for ``spare_count(parallel)`` suggestions more
    than the free slots, and the surplus fills the next slots until ``parallel`` results
    came in."""
    history: list[TrialRecord] = []
    in_flight: list[int] = []  # history indices, oldest first
    values: Values = []
    spent = 0.0
    exhausted = False
    look = Lookahead() if ahead else None
    while len(values) < budget:
        free = min(parallel - len(in_flight), budget - len(history))
        if free > 0 and not exhausted:
            batch = [] if look is None else look.take(free, len(history), len(values), parallel)
            if not batch:
                started = time.perf_counter()
                strategy = make_strategy(name, problem.space, history, seed=seed)
                extra = 0 if look is None else spare_count(parallel)
                answer = strategy.ask(min(free + extra, budget - len(history)))
                exhausted = strategy.exhausted
                spent += time.perf_counter() - started
                batch = answer[:free]
                if look is not None:
                    look.keep(answer[free:], len(history) + len(batch), len(values))
            for s in batch:
                in_flight.append(len(history))
                history.append(TrialRecord(len(history), s.params, "running", info=s.info))
        if not in_flight:
            break  # a bounded strategy (grid) ran out of points
        index = in_flight.pop(0)
        value = _evaluate(problem, history[index].params)
        status = "failed" if value is None else "completed"
        history[index] = replace(history[index], status=status, value=value)
        values.append(value)
    return values, spent


def _optuna_sampler(peer: str, seed: int) -> Any:
    import warnings

    import optuna

    if peer == "optuna-gp":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.GPSampler(seed=seed)
    if peer == "optuna-tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def _drive_optuna(
    peer: str, problem: Problem, seed: int, budget: int, parallel: int
) -> tuple[Values, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = _optuna_sampler(peer, seed)
    started = time.perf_counter()
    study = optuna.create_study(direction="minimize", sampler=sampler)
    spent = time.perf_counter() - started

    def suggest(trial: optuna.Trial) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for p in problem.space:
            if not problem.space.is_active(p.name, params):
                continue  # conditional: only the active parameters are asked for
            if p.kind == "float":
                params[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
            elif p.kind == "int":
                step = 1 if p.log else p.step  # optuna allows no step on a log scale
                params[p.name] = trial.suggest_int(p.name, p.low, p.top, step=step, log=p.log)
            else:
                params[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        return params

    in_flight: list[tuple[optuna.Trial, dict[str, Any]]] = []
    values: Values = []
    asked = 0
    while len(values) < budget:
        while len(in_flight) < parallel and asked < budget:
            started = time.perf_counter()
            trial = study.ask()
            in_flight.append((trial, suggest(trial)))
            spent += time.perf_counter() - started
            asked += 1
        trial, params = in_flight.pop(0)
        value = _evaluate(problem, params)
        started = time.perf_counter()
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
        spent += time.perf_counter() - started
        values.append(value)
    return values, spent


def run_method(
    problem_name: str, method: str, seed: int, budget: int, parallel: int = 1, smoke: bool = False
) -> Run:
    """Run ``method`` (a strategy name or one of ``OPTUNA_PEERS``) for ``budget``
    evaluations; module-level so worker processes can run it."""
    problem = _problem(problem_name, smoke)
    if method == AHEAD:
        values, spent = _drive_ours("bayes", problem, seed, budget, parallel, ahead=True)
    else:
        drive = _drive_optuna if method in OPTUNA_PEERS else _drive_ours
        values, spent = drive(method, problem, seed, budget, parallel)
    return Run(problem_name, method, seed, values, spent)


def _evaluate_points(problem_name: str, smoke: bool, points: list[dict[str, Any]]) -> Values:
    problem = _problem(problem_name, smoke)
    return [_evaluate(problem, p) for p in points]


def reference_values(
    problem: Problem, smoke: bool, starmap: Callable[..., list[Any]], jobs: int
) -> list[float]:
    """Values of ``problem.reference_draws`` random points (fixed seed), failures dropped."""
    rng = np.random.default_rng(REFERENCE_SEED)
    points = [problem.space.sample(rng) for _ in range(problem.reference_draws)]
    chunks = [points[i::jobs] for i in range(jobs)]
    results = starmap(_evaluate_points, [(problem.name, smoke, c) for c in chunks])
    return [v for chunk in results for v in chunk if v is not None]


def _best(values: Values, budget: int) -> float | None:
    done = [v for v in values[:budget] if v is not None]
    return min(done) if done else None


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    return "inf" if math.isinf(x) else f"{x:.3g}" if x < 1000 else f"{x:.0f}"


def _ratio(a: float, b: float) -> float:
    if b == 0:
        return 1.0 if a == 0 else math.inf
    return a / b


def regret_medians(
    problem: Problem,
    runs: Sequence[Run],
    reference: Sequence[float],
    budgets: Sequence[int],
    methods: Sequence[str],
) -> tuple[dict[str, list[float]], float, float]:
    """Median normalized regret per method at each budget (module doc), with the
    ``f*`` and median random value it is normalized by."""
    observed = [v for r in runs for v in r.values if v is not None]
    f_star = problem.optimum if problem.optimum is not None else min([*reference, *observed])
    typical = statistics.median(reference)
    scale = typical - f_star if typical > f_star else 1.0

    def regret(run: Run, b: int) -> float:
        best = _best(run.values, b)
        return math.inf if best is None else max(best - f_star, 0.0) / scale

    medians = {
        m: [statistics.median(regret(r, b) for r in runs if r.method == m) for b in budgets]
        for m in methods
    }
    return medians, f_star, typical


#: The columns of ratios: each method's regret over these methods' (below 1: better).
RATIO_BASES: tuple[tuple[str, str], ...] = (
    ("optuna-gp", "gp"),
    ("optuna-tpe", "tpe"),
    ("random", "rnd"),
)


def regret_table(
    problem: Problem,
    runs: Sequence[Run],
    reference: Sequence[float],
    budgets: Sequence[int],
    methods: Sequence[str],
    notes: Sequence[str] = (),
) -> tuple[str, dict[str, list[float]]]:
    """The printed table: median normalized regret per method and budget, ratios to
    GPSampler, TPE and our random strategy, and milliseconds per ask; ``notes`` are
    printed between the title and the column header. Returned with the medians
    (``regret_medians``), which the scoreboard reuses."""
    medians, f_star, typical = regret_medians(problem, runs, reference, budgets, methods)
    seconds: dict[str, float] = {}
    for m in methods:
        mine = [r for r in runs if r.method == m]
        evaluations = sum(len(r.values) for r in mine) or 1
        seconds[m] = 1000 * sum(r.method_seconds for r in mine) / evaluations
    seeds = len({r.seed for r in runs})
    source = "known" if problem.optimum is not None else "best seen in this run"
    lines = [
        f"== {problem.name}: {problem.description}; suite {problem.suite}; "
        f"median over {seeds} seeds",
        f"   regret = (best found - f*) / (median random - f*); f* = {f_star:.6g} ({source}), "
        f"median random = {typical:.6g} ({len(reference):,} random points)",
        *(f"   {note}" for note in notes),
    ]
    cols = [f"r@{b}" for b in budgets]
    cols += [f"/{short}@{b}" for _, short in RATIO_BASES for b in budgets] + ["ms/ask"]
    lines.append(f"{'method':<16}" + "".join(f"{c:>10}" for c in cols))
    for m in methods:
        cells = [_fmt(x) for x in medians[m]]
        for base, _ in RATIO_BASES:
            ref = medians.get(base)
            if ref is None:
                cells += ["n/a"] * len(budgets)
            else:
                cells += [_fmt(_ratio(x, y)) for x, y in zip(medians[m], ref, strict=True)]
        cells.append(f"{seconds[m]:.1f}")
        lines.append(f"{m:<16}" + "".join(f"{c:>10}" for c in cells))
    return "\n".join(lines), medians


def scoreboard(
    medians: Mapping[str, Mapping[str, Sequence[float]]],
    budgets: Sequence[int],
    ours: str,
    peer: str,
) -> list[str]:
    """Per budget, on how many problems ``ours``'s median regret is at most ``peer``'s
    (problem -> method -> medians per budget), naming the problems where it is not."""
    both = {p: m for p, m in medians.items() if ours in m and peer in m}
    lines = []
    for i, b in enumerate(budgets):
        worse = [p for p, m in both.items() if m[ours][i] > m[peer][i] * (1 + 1e-9)]
        lines.append(
            f"{ours} <= {peer} at {b}: {len(both) - len(worse)} of {len(both)} problems"
            + (f" (worse on {', '.join(worse)})" if worse else "")
        )
    return lines


def _int_list(text: str) -> list[int]:
    values = [int(x) for x in text.split(",") if x.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers separated by commas")
    return sorted(set(values))


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.search_quality")
    parser.add_argument("--suite", choices=SUITES, default="tune", help="default tune")
    parser.add_argument("--problems", default=None, help="comma-separated; overrides --suite")
    parser.add_argument("--seeds", type=int, default=None, help="default 10 (smoke: 2)")
    parser.add_argument(
        "--budgets", type=_int_list, default=None, help="default 50,100 (smoke: 5,12)"
    )
    parser.add_argument("--parallel", type=int, default=1, help="trials in flight (max_parallel)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--methods",
        default=None,
        help="subset of methods, comma-separated (random and the optuna peers always run: ratios)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="2 seeds, budgets 5,12, a problem of each kind"
    )
    args = parser.parse_args(argv)
    args.seeds = args.seeds or (2 if args.smoke else 10)
    args.budgets = args.budgets or ([5, 12] if args.smoke else [50, 100])
    if args.parallel < 1 or args.jobs < 1 or args.seeds < 1:
        parser.error("--parallel, --jobs and --seeds must be >= 1")
    if args.problems is not None:
        args.problems = [p for p in args.problems.split(",") if p]
    elif args.smoke:
        args.problems = list(SMOKE_PROBLEMS)
    else:
        args.problems = suite_problems(args.suite)
    unknown = [p for p in args.problems if p not in PROBLEMS]
    if unknown:
        parser.error(f"unknown problems {unknown}; known: {', '.join(PROBLEMS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one table per problem; returns the exit status."""
    args = _parse(argv)
    try:
        import optuna

        peers: list[str] = list(OPTUNA_PEERS)
        peer_note = f"optuna {optuna.__version__}"
    except ImportError:
        peers, peer_note = [], "optuna not installed (pip install 'hpo-service[bench]'): no peers"
    budget = max(args.budgets)
    print(
        f"search quality: seeds 0..{args.seeds - 1}, budgets {args.budgets}, "
        f"parallel {args.parallel}{', smoke' if args.smoke else ''}; {peer_note}"
    )
    pool = ProcessPoolExecutor(args.jobs) if args.jobs > 1 else None

    def starmap(fn: Callable[..., Any], arglists: list[tuple[Any, ...]]) -> list[Any]:
        if pool is None:
            return [fn(*a) for a in arglists]
        return list(pool.map(fn, *zip(*arglists, strict=True)))

    started = time.perf_counter()
    boards: dict[str, dict[str, list[float]]] = {}
    try:
        for name in args.problems:
            problem = _problem(name, args.smoke)
            ours, skipped = usable_strategies(problem)
            methods = ours + peers
            if args.methods:
                wanted = args.methods.split(",")
                methods = [m for m in methods if m in wanted or m == "random" or m in peers]
                methods += [AHEAD] if AHEAD in wanted else []
            reference = reference_values(problem, args.smoke, starmap, args.jobs)
            tasks = [
                (name, m, seed, budget, args.parallel, args.smoke)
                for m in methods
                for seed in range(args.seeds)
            ]
            runs = starmap(run_method, tasks)
            notes = [f"skipped {skip}: {why}" for skip, why in skipped.items()]
            table, boards[name] = regret_table(
                problem, runs, reference, args.budgets, methods, notes
            )
            print(table, flush=True)
    finally:
        if pool is not None:
            pool.shutdown()
    for peer in ("optuna-gp", "optuna-tpe"):
        for line in scoreboard(boards, args.budgets, "bayes", peer):
            print(line)
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
