"""Multi-fidelity benchmark on recorded learning curves: many draws, no training noise.

    python -m benchmarks.multi_fidelity_replay [--configs 300] [--draws 200]
        [--random-trials 20,40,60,100] [--space mlp-cnn] [--max-budget 27] [--eta 3]
        [--min-budget 1] [--methods hyperband,asha,...] [--jobs 1]
        [--curves FILE] [--seed 0] [--smoke]

``benchmarks.multi_fidelity`` trains every trial, so ten seeds take an hour and its
medians swing with which configurations a seed happens to draw. This one trains
``--configs`` random configurations of the space once, ``--max-budget`` epochs each with
one training seed, and keeps every epoch's validation accuracy (``--curves``, reused
when it already holds enough). Training resumes exactly (``models.train``: batches and
dropout are seeded per epoch, the decay counts steps), so a configuration promoted from
a checkpoint to budget *b* scores what its curve says at epoch *b*: for strategies that
draw new configurations at random, running them against the table is the same as
training, and costs milliseconds.

Each draw samples configurations from the table (with replacement) for every method:
random search with ``--random-trials`` full-budget trials (its best final accuracy is the
target, its epochs until it first reached it the reference); our hyperband and asha with
``sampler: random``, the real strategy classes, drawing new configurations from the
table and asked one trial at a time; and the peer, Optuna's RandomSampler with its
HyperbandPruner, which reports every epoch. Every method is credited by the value a
trial ends with (at its budget, or where it was pruned), as in
``benchmarks.multi_fidelity``: a value passed mid-trial and lost by its end is not
what the trial returns. Every method is capped at 3x random's
epochs; an unmatched draw counts at what it spent. Printed per random budget: median
epochs to match, the ratio of medians to random's (the issue's target: <= 1/3) with its
90 % bootstrap interval over the draws (``benchmarks.multi_fidelity_stats``), and how
often each method matched.

The model-based variants (``sampler: bayes``, asha's default) run too, named
``hyperband(bayes)`` and ``asha(bayes)``: the real sampler proposes a configuration of
the space and it is snapped to the nearest configuration of the table not tried yet
(model features, Euclidean); its random third draws a row as the random sampler does.
A snap moves the proposal, so these figures understate what the model does when it
trains its own proposals (``benchmarks.multi_fidelity`` measures that, with noise).
Each of their asks fits a GP: ``--methods`` leaves them out of a quick run.

``hyperband(oracle)`` and ``asha(oracle)`` bound what better ranking could buy: the
strategy (random sampler) ranks every trial of every rung by its configuration's *final*
accuracy, as if low budgets predicted it perfectly, while it still pays and is credited
as the others are. What an oracle row spends is the cost of the schedule itself (how
many epochs each screened configuration costs, and the floor) with random
configurations: a method whose figure is above the target even here can reach it only
with a sampler that proposes better than random configurations, not by ranking better.

Syne Tune's peers (``benchmarks.syne_peers``: ``syne ASHA``, ``syne BOHB``, ``syne DEHB``,
``syne Hyper-Tune``) run when named in ``--methods`` and syne_tune is installed: each new
trial is the untried row nearest to the scheduler's proposal (as for ``(bayes)``), and
paused trials resume where they stopped. Not in the default run: BOHB and Hyper-Tune
cost seconds per draw.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import syne_peers
from benchmarks.multi_fidelity import SPACES, Trainer, hyperband_peer_study, run_ours
from benchmarks.multi_fidelity_stats import first_full_cost, ratio_interval
from search import SearchSpace, TrialRecord, get_strategy
from search.encoding import encoder_for

__all__ = [
    "Table",
    "main",
    "record_curves",
    "replay",
    "sample_params",
]

PEER = "optuna-random+hyperband"
#: Our strategies replayed, by method name: (strategy, sampler, ranks by final accuracy).
OURS = {
    "hyperband": ("hyperband", "random", False),
    "asha": ("asha", "random", False),
    "hyperband(bayes)": ("hyperband", "bayes", False),
    "asha(bayes)": ("asha", "bayes", False),
    "hyperband(oracle)": ("hyperband", "random", True),
    "asha(oracle)": ("asha", "random", True),
}
METHODS = ("random", *OURS, PEER)
#: Besides METHODS, what ``--methods`` takes (not run by default).
EXTRA = syne_peers.PEERS


def record_curves(
    space_name: str, configs: int, max_budget: int, seed: int, path: Path
) -> list[list[float]]:
    """The validation accuracy after each epoch of ``configs`` random configurations,
    trained with training seed ``seed`` (a curve shorter than ``max_budget``: training
    diverged in the epoch after its last); appended to ``path`` (one JSON line per
    configuration) and reused from it when already there."""
    curves = _read(path, space_name, max_budget, seed)
    if len(curves) >= configs:
        return curves[:configs]
    trainer = Trainer()  # digits loaded once; training diverged -> the curve ends early
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        for index in range(len(curves), configs):
            params = sample_params(space_name, seed, index)
            curve: list[float] = []
            trainer.run(
                params, max_budget, None, seed, on_epoch=lambda m, c=curve: c.append(m.val_accuracy)
            )
            key = {"space": space_name, "max_budget": max_budget, "seed": seed}
            out.write(json.dumps({**key, "index": index, "curve": curve}) + "\n")
            out.flush()
            curves.append(curve)
    return curves


def sample_params(space_name: str, seed: int, index: int) -> dict[str, Any]:
    """Configuration ``index`` of the table recorded with ``seed``."""
    space = SearchSpace.from_dict(SPACES[space_name])
    return space.sample(np.random.default_rng([seed, index]))


def _read(path: Path, space: str, max_budget: int, seed: int) -> list[list[float]]:
    """The curves already in ``path`` recorded with the same space, budget and seed, in
    index order up to the first one missing (lines of other settings are skipped)."""
    if not path.exists():
        return []
    curves: dict[int, list[float]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if (row["space"], row["max_budget"], row["seed"]) == (space, max_budget, seed):
            curves[row["index"]] = row["curve"]
    ordered: list[list[float]] = []
    while len(ordered) in curves:
        ordered.append(curves[len(ordered)])
    return ordered


class Table:
    """The recorded configurations: each row's parameters and curve, the row of a
    configuration, and the untried row nearest to a proposal."""

    def __init__(self, space_name: str, seed: int, curves: Sequence[list[float]]) -> None:
        self.space = SearchSpace.from_dict(SPACES[space_name])
        self.curves = curves
        self.params = [sample_params(space_name, seed, k) for k in range(len(curves))]
        self._encoder = encoder_for(self.space)
        self._rows = {self._encoder.key(p): k for k, p in enumerate(self.params)}
        self._features = self._encoder.features(self.params)

    def row(self, params: Mapping[str, Any]) -> int:
        """The row of a configuration of the table."""
        return self._rows[self._encoder.key(params)]

    def nearest(self, params: Mapping[str, Any], tried: set[int]) -> int:
        """The row nearest to ``params`` in model features, among rows not in ``tried``
        (among all of them once every row was tried)."""
        distance = ((self._features - self._encoder.features([params])[0]) ** 2).sum(axis=1)
        if len(tried) < len(self.params):
            distance[list(tried)] = np.inf
        return int(np.argmin(distance))


def _pooled(name: str, table: Table, oracle: bool = False) -> type:
    """Strategy ``name`` whose new configurations are rows of the table: a random one
    drawn with the strategy's own seeded generator (as ``sampler: random`` draws from
    the space), or the untried row nearest to its model's proposal. With ``oracle`` the
    strategy sees every completed trial valued at its row's final accuracy (-1 for a
    row whose training diverged), so it ranks rungs perfectly; what the trial scored,
    costs and is credited with is unchanged (``run_ours`` keeps it)."""
    base = get_strategy(name)

    class Pooled(base):  # type: ignore[misc, valid-type]
        def __init__(self, space, history=(), **kwargs):  # type: ignore[no-untyped-def]
            if oracle:
                end = kwargs["options"]["max_budget"]
                history = [_valued_at(t, table, end) for t in history]
            super().__init__(space, history, **kwargs)

        def new_params(self, rng, pending, start_budget):  # type: ignore[no-untyped-def]
            if self.options["sampler"] == "bayes":
                params, source = super().new_params(rng, pending, start_budget)
                if source == "model":
                    tried = {table.row(t.params) for t in self.history}
                    tried |= {table.row(p) for p in pending}
                    return dict(table.params[table.nearest(params, tried)]), source
            return dict(table.params[int(rng.integers(len(table.params)))]), "random"

        def in_space(self, trial: TrialRecord) -> bool:
            return True  # rows of the table, all drawn from the space

    return Pooled


def _valued_at(trial: TrialRecord, table: Table, epoch: int) -> TrialRecord:
    """A completed ``trial`` valued at its row's accuracy after ``epoch`` (-1 when
    training diverged before)."""
    if trial.status != "completed":
        return trial
    final = _accuracy(table.curves[table.row(trial.params)], epoch)
    return replace(trial, value=-1.0 if final is None else final)


def _accuracy(curve: Sequence[float], epoch: int) -> float | None:
    """The accuracy after ``epoch``; None when training diverged by then."""
    return curve[epoch - 1] if epoch <= len(curve) else None


def _random(
    curves: Sequence[list[float]], rng: np.random.Generator, trials: int, budget: int
) -> tuple[float, int]:
    """Random search's (best final accuracy, epochs until it first reached it)."""
    finals = [_accuracy(curves[k], budget) for k in rng.integers(len(curves), size=trials)]
    scored = [f if f is not None else -1.0 for f in finals]
    best = max(scored)
    return best, budget * (scored.index(best) + 1)


class _TableTrainer:
    """:meth:`benchmarks.multi_fidelity.Trainer.run` answered from the table: a trial's
    parameters name a row, its accuracy is the curve at its budget, and it costs the
    epochs past its parent's budget (a diverged one: up to its budget)."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def seed_for(self, seed: int, number: int) -> int:
        return seed  # the table was trained with one seed

    def run(self, params: Mapping[str, Any], budget: int, start: Any, seed: int):
        done = 0 if start is None else int(start[1])
        accuracy = _accuracy(self.table.curves[self.table.row(params)], budget)
        return accuracy, None if accuracy is None else (None, budget), budget - done


def _ours(
    cls: type,
    table: Table,
    options: Mapping[str, Any],
    seed: int,
    target: float,
    cap: int,
) -> int | None:
    """Epochs until a trial of the strategy reaches ``target`` (None: not within
    ``cap``): the trained benchmark's loop, on the table."""
    outcome = run_ours(
        _TableTrainer(table), table.space, cls.name, dict(options), seed, target, cap, strategy=cls
    )
    return outcome.epochs_to_match


def _peer(
    curves: Sequence[list[float]],
    seed: int,
    target: float,
    cap: int,
    budget: int,
    eta: int,
    min_budget: int = 1,
) -> int | None:
    """Optuna's RandomSampler + HyperbandPruner over the table's configurations."""
    import optuna

    sampler = optuna.samplers.RandomSampler(seed=seed)
    study = hyperband_peer_study(f"replay-{seed}", sampler, budget, eta, min_budget)
    state: dict[str, Any] = {"spent": 0, "matched": None}

    def objective(trial: optuna.Trial) -> float:
        curve = curves[trial.suggest_int("row", 0, len(curves) - 1)]
        value = 0.0
        for epoch in range(1, budget + 1):
            state["spent"] += 1
            if epoch > len(curve):
                return float("nan")  # diverged in this epoch: Optuna records a failure
            value = curve[epoch - 1]
            trial.report(value, epoch)
            if trial.should_prune() or state["spent"] >= cap:
                break
        # Credited like every other method: by the value the trial ended with.
        if state["matched"] is None and value >= target:
            state["matched"] = state["spent"]
        return value

    while state["matched"] is None and state["spent"] < cap:
        study.optimize(objective, n_trials=1)
    return state["matched"]


@dataclass(frozen=True)
class _Setting:
    """What every draw of one replay shares."""

    curves: Sequence[list[float]]
    space_name: str
    seed: int
    budget: int
    eta: int
    min_budget: int
    cap: int
    methods: tuple[str, ...]  # every method but random


#: This process's replay: its setting, table and our strategies over the table.
_SHARED: list[tuple[_Setting, Table, dict[str, type]]] = []


def _prepare(setting: _Setting) -> None:
    """Build the table and our table-backed strategies once per process (a pool's
    initializer, so the curves travel once, not with every draw)."""
    table = Table(setting.space_name, setting.seed, setting.curves)
    classes = {m: _pooled(OURS[m][0], table, OURS[m][2]) for m in setting.methods if m in OURS}
    _SHARED[:] = [(setting, table, classes)]


def _draw(plan: tuple[float, int]) -> dict[str, tuple[int | None, int]]:
    """One draw ``(target, seed)`` of every method but random: ``(epochs to match or
    None, counted)`` per method. Module-level, so draws can run in other processes."""
    setting, table, classes = _SHARED[0]
    target, draw_seed = plan
    budget, eta, min_budget, cap = setting.budget, setting.eta, setting.min_budget, setting.cap
    out: dict[str, tuple[int | None, int]] = {}
    for method in setting.methods:
        if method == PEER:
            matched = _peer(setting.curves, draw_seed, target, cap, budget, eta, min_budget)
        elif method in EXTRA:
            trainer, snap = _TableTrainer(table), syne_peers.table_snap(table)
            args = (draw_seed, target, cap, budget, eta, snap, min_budget)
            matched = syne_peers.run_syne(method, trainer, table.space, *args).epochs_to_match
        else:
            options = {"max_budget": budget, "min_budget": min_budget, "eta": eta}
            options["sampler"] = OURS[method][1]
            matched = _ours(classes[method], table, options, draw_seed, target, cap)
        out[method] = (matched, cap if matched is None else matched)
    return out


def replay(
    curves: Sequence[list[float]],
    random_trials: int,
    draws: int,
    budget: int,
    eta: int,
    seed: int = 0,
    methods: Sequence[str] = METHODS,
    min_budget: int = 1,
    space_name: str = "mlp-cnn",
    jobs: int = 1,
) -> dict[str, list[tuple[int | None, int]]]:
    """``(epochs to match or None, epochs counted)`` per method and draw; ``curves``
    are those of configurations ``sample_params(space_name, seed, k)``. Draws run in
    ``jobs`` processes; the figures do not depend on it."""
    rng = np.random.default_rng([seed, random_trials])
    rows: dict[str, list[tuple[int | None, int]]] = {m: [] for m in ("random", *methods)}
    plans = []
    for _ in range(draws):
        target, reference = _random(curves, rng, random_trials, budget)
        rows["random"].append((reference, reference))
        plans.append((target, int(rng.integers(2**31))))
    others = tuple(m for m in methods if m != "random")
    cap = 3 * random_trials * budget
    setting = _Setting(curves, space_name, seed, budget, eta, min_budget, cap, others)
    if jobs > 1 and draws > 1:
        with ProcessPoolExecutor(jobs, initializer=_prepare, initargs=(setting,)) as pool:
            outcomes = list(pool.map(_draw, plans))
    else:
        _prepare(setting)
        outcomes = [_draw(plan) for plan in plans]
    for outcome in outcomes:
        for method, counted in outcome.items():
            rows[method].append(counted)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=300, help="configurations recorded")
    parser.add_argument("--draws", type=int, default=200, help="replays per random budget")
    parser.add_argument("--random-trials", default="20,40,60,100")
    parser.add_argument("--space", choices=sorted(SPACES), default="mlp-cnn")
    parser.add_argument("--max-budget", type=int, default=27)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--min-budget", type=int, default=1, help="epochs of the bottom rung")
    parser.add_argument("--seed", type=int, default=0, help="training seed of the table")
    parser.add_argument("--curves", type=Path, default=None, help="the table's file")
    parser.add_argument("--jobs", type=int, default=1, help="draws run in this many processes")
    parser.add_argument(
        "--methods", default=",".join(METHODS[1:]), help="besides random (always run)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.configs, args.draws, args.max_budget, args.random_trials = 6, 3, 4, "3"
    try:
        budgets = [int(x) for x in args.random_trials.split(",") if x.strip()]
    except ValueError:
        parser.error("--random-trials: comma-separated positive integers")
    if not budgets or min(budgets) < 1 or min(args.configs, args.draws, args.jobs) < 1:
        parser.error("--configs, --draws, --jobs and every --random-trials must be >= 1")
    if not 1 <= args.min_budget <= args.max_budget or args.eta < 2:
        parser.error("--min-budget must be 1..--max-budget, and --eta >= 2")
    path = args.curves or Path(
        "test-artifacts", "curves", f"{args.space}-{args.max_budget}-{args.seed}.jsonl"
    )
    started = time.monotonic()
    curves = record_curves(args.space, args.configs, args.max_budget, args.seed, path)
    print(f"{len(curves)} recorded curves in {path} ({time.monotonic() - started:.0f}s)")
    methods = [m.strip() for m in args.methods.split(",") if m.strip() and m.strip() != "random"]
    unknown = sorted(set(methods) - set(METHODS) - set(EXTRA))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; choose from {[*METHODS, *EXTRA]}")
    if set(methods) & set(EXTRA) and not syne_peers.available():
        print("syne_tune is not installed: its peers are left out", file=sys.stderr)
        methods = [m for m in methods if m not in EXTRA]
    if PEER in methods:
        try:
            import optuna  # noqa: F401
        except ImportError:
            print("optuna is not installed: the peer is left out", file=sys.stderr)
            methods.remove(PEER)
    print(_header(curves, args))
    floor = first_full_cost(args.min_budget, args.max_budget, args.eta)
    for trials in budgets:
        rows = replay(
            curves,
            trials,
            args.draws,
            args.max_budget,
            args.eta,
            args.seed,
            methods,
            min_budget=args.min_budget,
            space_name=args.space,
            jobs=args.jobs,
        )
        print(_line(trials, rows, floor))
    return 0


def _header(curves: Sequence[list[float]], args: argparse.Namespace) -> str:
    finals = sorted(c[-1] for c in curves if len(c) == args.max_budget)
    p90 = finals[int(0.9 * (len(finals) - 1))] if finals else float("nan")
    return "\n".join(
        [
            f"multi-fidelity replay on digits ({args.space}), max_budget={args.max_budget}, "
            f"eta={args.eta}, min_budget={args.min_budget}, {args.draws} draws per random "
            "budget; final accuracy of the "
            f"table: median {statistics.median(finals) if finals else float('nan'):.4f}, "
            f"90th percentile {p90:.4f}, best {finals[-1] if finals else float('nan'):.4f}",
            "random trials | median epochs to match (ratio to random's [90% bootstrap "
            "interval], matched share); floor: the epochs of the ladder's first "
            "full-budget result",
        ]
    )


def _line(
    trials: int, rows: Mapping[str, list[tuple[int | None, int]]], floor: int | None = None
) -> str:
    random = [counted for _, counted in rows["random"]]
    reference = statistics.median(random)
    cells = [] if floor is None else [f"[floor {floor} = {floor / reference:.2f}x]"]
    for name, outcomes in rows.items():
        counted = [c for _, c in outcomes]
        median = statistics.median(counted)
        matched = sum(m is not None for m, _ in outcomes) / len(outcomes)
        ratio = f"{median / reference:.2f}x"
        if name != "random":
            low, high = ratio_interval(counted, random)
            ratio += f" [{low:.2f}-{high:.2f}]"
        cells.append(f"{name} {median:.0f} ({ratio}, {matched:.0%})")
    return f"{trials:>13} | " + "  ".join(cells)


if __name__ == "__main__":
    raise SystemExit(main())
