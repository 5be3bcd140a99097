"""PBT benchmark: best final loss for the same epochs, on a task where the schedule matters.

    python -m benchmarks.pbt [--seeds 10] [--population 8] [--epochs 40] [--interval 5]
        [--workers 4] [--methods pbt,asha,asha-random,random,ray-pbt] [--smoke]

The task is SGD on a noisy quadratic model (``benchmarks.schedule_task``: a family of
tasks drawn per seed, where high learning rates lead early and lose late, so a schedule
beats every constant configuration). Every method gets the same epochs,
``population x epochs``:

* ``pbt`` (ours): ``--population`` members in segments of ``--interval`` epochs;
* ``asha`` (ours, its default model sampler) and ``asha-random``: configurations at
  constant parameters, promoted from their checkpoints, until the epochs are spent;
* ``random`` (ours): ``--population`` configurations trained for ``--epochs``;
* ``ray-pbt``: Ray Tune's PopulationBasedTraining (same population, interval,
  quantile, resample probability and perturbation factors; in a process of its own,
  when ``ray[tune]`` is installed: ``pip install -e '.[bench]'``).

Ours run in-process with ``--workers`` segments in flight, the oldest finishing first,
each resuming exactly from its parent's checkpoint (the task's state). Printed per seed
and as medians over seeds: the best loss among trials that trained the full epochs,
the best constant configuration (a 40 x 7 grid, for reference: what no schedule-free
method can beat), and ratios of pbt's loss to each method's (below 1: pbt is better).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.schedule_task import SPACE, make_task
from search import TrialRecord, make_strategy

__all__ = ["METHODS", "best_constant", "main", "run_ours", "run_ray"]

METHODS = ("pbt", "asha", "asha-random", "random", "ray-pbt")
ROOT = Path(__file__).resolve().parent.parent
_QUANTILE, _RESAMPLE, _FACTOR = 0.25, 0.25, 0.2


def _strategy(method: str, history: list[TrialRecord], seed: int, args: argparse.Namespace) -> Any:
    if method == "pbt":
        options = {
            "population_size": args.population,
            "interval": args.interval,
            "max_budget": args.epochs,
            "quantile": _QUANTILE,
            "resample_probability": _RESAMPLE,
            "perturb_factor": _FACTOR,
        }
        return make_strategy("pbt", SPACE, history, seed=seed, options=options)
    if method.startswith("asha"):
        options: dict[str, Any] = {"max_budget": args.epochs}
        if method == "asha-random":
            options["sampler"] = "random"
        return make_strategy("asha", SPACE, history, seed=seed, options=options)
    return make_strategy("random", SPACE, history, seed=seed)


def run_ours(method: str, seed: int, args: argparse.Namespace) -> tuple[float, int]:
    """``(best loss at the full epochs, epochs spent)`` of one of our strategies."""
    task = make_task(seed)
    allowed = args.population * args.epochs
    history: list[TrialRecord] = []
    states: dict[int, np.ndarray] = {}
    flying: list[int] = []
    spent = 0
    while True:
        strategy = _strategy(method, history, seed, args)
        if not strategy.exhausted and spent + _committed(history, flying, args) < allowed:
            free = args.workers - len(flying)
            for s in strategy.ask(free) if free > 0 else []:
                history.append(TrialRecord(len(history), s.params, "running", info=s.info))
                flying.append(len(history) - 1)
        if method == "random" and len(history) >= args.population:
            allowed = min(allowed, spent + _committed(history, flying, args))
        if not flying:
            break
        number = flying.pop(0)
        trial = history[number]
        parent = trial.info.get("parent")
        state = states[parent].copy() if isinstance(parent, int) else task.initial()
        start = history[parent].info["budget"] if isinstance(parent, int) else 0
        budget = int(trial.info.get("budget", args.epochs))
        curve: dict[int, float] = {}
        for epoch in range(start + 1, budget + 1):
            state = task.epoch(state, trial.params)
            curve[epoch] = task.loss(state)
        spent += budget - start
        states[number] = state
        value = curve[budget] if curve else task.loss(state)
        history[number] = TrialRecord(
            number, trial.params, "completed", value, curve, info=trial.info
        )
    finals = [
        t.value
        for t in history
        if t.value is not None and int(t.info.get("budget", args.epochs)) == args.epochs
    ]
    return (min(finals) if finals else float("inf")), spent


def _committed(history: list[TrialRecord], flying: list[int], args: argparse.Namespace) -> int:
    """Epochs the trials in flight will train."""
    total = 0
    for number in flying:
        info = history[number].info
        parent = info.get("parent")
        start = history[parent].info["budget"] if isinstance(parent, int) else 0
        total += int(info.get("budget", args.epochs)) - start
    return total


def best_constant(seed: int, epochs: int) -> float:
    """The lowest final loss of any constant configuration on a 40 x 7 grid."""
    task = make_task(seed)
    best = float("inf")
    for lr in np.geomspace(1e-3, 2.5, 40):
        for batch in (8, 16, 32, 64, 128, 256, 512):
            state = task.initial()
            for _ in range(epochs):
                state = task.epoch(state, {"lr": lr, "batch_size": batch})
            best = min(best, task.loss(state))
    return best


def run_ray(seeds: Sequence[int], args: argparse.Namespace) -> dict[int, tuple[float, int]] | str:
    """Ray Tune's PBT on each seed, in a process of its own; why not, when it cannot."""
    if importlib.util.find_spec("ray") is None:
        return "ray[tune] is not installed"
    cmd = [sys.executable, "-m", "benchmarks.pbt", "--ray-child", "--seeds", str(len(seeds))]
    cmd += ["--first-seed", str(seeds[0]), "--population", str(args.population)]
    cmd += ["--epochs", str(args.epochs), "--interval", str(args.interval)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return f"Ray Tune failed (exit {done.returncode}): {done.stderr[-800:]}"
    return {int(k): (v[0], v[1]) for k, v in json.loads(lines[-1]).items()}


def _ray_child(seeds: Sequence[int], args: argparse.Namespace) -> None:
    import random

    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out: dict[int, tuple[float, int]] = {}
    for seed in seeds:
        task = make_task(seed)
        random.seed(seed)
        np.random.seed(seed)

        tally = Path(tempfile.mkdtemp(prefix="ray-pbt-epochs-")) / "epochs"
        tally.touch()

        def trainable(config: dict[str, Any], task: Any = task, tally: Path = tally) -> None:
            from ray.tune import Checkpoint

            state, epoch = task.initial(), 0
            found = tune.get_checkpoint()
            if found is not None:
                with found.as_directory() as folder:
                    saved = json.loads((Path(folder) / "state.json").read_text())
                state, epoch = np.array(saved["state"]), saved["epoch"]
            while epoch < args.epochs:
                state = task.epoch(state, config)
                epoch += 1
                with tally.open("a") as counted:  # an epoch trained, whoever is restored later
                    counted.write(".")
                metrics = {"loss": task.loss(state), "epoch": epoch}
                if epoch % args.interval == 0 or epoch == args.epochs:
                    with tempfile.TemporaryDirectory() as folder:
                        payload = {"state": state.tolist(), "epoch": epoch}
                        (Path(folder) / "state.json").write_text(json.dumps(payload))
                        tune.report(metrics, checkpoint=Checkpoint.from_directory(folder))
                else:
                    tune.report(metrics)

        scheduler = PopulationBasedTraining(
            time_attr="epoch",
            perturbation_interval=args.interval,
            hyperparam_mutations={
                "lr": tune.loguniform(1e-3, 2.5),
                "batch_size": tune.lograndint(8, 513),
            },
            quantile_fraction=_QUANTILE,
            resample_probability=_RESAMPLE,
            perturbation_factors=(1 + _FACTOR, 1 - _FACTOR),
        )
        with tempfile.TemporaryDirectory(prefix="ray-pbt-") as root:
            tuner = tune.Tuner(
                tune.with_resources(trainable, {"cpu": 2 / args.population}),
                param_space={
                    "lr": tune.loguniform(1e-3, 2.5),
                    "batch_size": tune.lograndint(8, 513),
                },
                tune_config=tune.TuneConfig(
                    scheduler=scheduler,
                    num_samples=args.population,
                    metric="loss",
                    mode="min",
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(storage_path=root, verbose=0),
            )
            grid = tuner.fit()
            finals = [
                float(result.metrics["loss"])
                for result in grid
                if result.metrics and int(result.metrics["epoch"]) == args.epochs
            ]
        spent = len(tally.read_text())
        shutil.rmtree(tally.parent, ignore_errors=True)
        out[seed] = (min(finals) if finals else float("inf"), spent)
    print(json.dumps(out), flush=True)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--smoke", action="store_true", help="2 seeds, 4 members, 8 epochs")
    parser.add_argument("--ray-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.population, args.epochs, args.interval, args.workers = 2, 4, 8, 2, 2
    unknown = set(args.methods.split(",")) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; known: {', '.join(METHODS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if args.ray_child:
        _ray_child(seeds, args)
        return 0
    methods = args.methods.split(",")
    print(
        f"== pbt: noisy quadratic, {args.population} x {args.epochs} epochs per method, "
        f"interval {args.interval}, {len(seeds)} seeds"
    )
    results: dict[str, dict[int, tuple[float, int]]] = {}
    for method in [m for m in methods if m != "ray-pbt"]:
        results[method] = {seed: run_ours(method, seed, args) for seed in seeds}
    if "ray-pbt" in methods:
        ray = run_ray(seeds, args)
        if isinstance(ray, str):
            print(f"ray-pbt: skipped ({ray})")
        else:
            results["ray-pbt"] = ray
    constant = {seed: best_constant(seed, args.epochs) for seed in seeds}
    names = list(results)
    print("seed  " + " ".join(f"{m:>12}" for m in [*names, "best-const"]))
    for seed in seeds:
        row = [results[m][seed][0] for m in names] + [constant[seed]]
        print(f"{seed:<5} " + " ".join(f"{v:>12.4g}" for v in row))
    print("method         median loss   epochs   pbt / method")
    loss = {m: {s: results[m][s][0] for s in seeds} for m in names} | {"best-const": constant}
    for m, by_seed in loss.items():
        epochs = statistics.median(results[m][s][1] for s in seeds) if m in results else 0
        ratio = "-"
        if "pbt" in loss:
            ratio = f"{statistics.median(loss['pbt'][s] / by_seed[s] for s in seeds):.3g}"
        print(f"{m:<14} {statistics.median(by_seed.values()):>11.4g}   {epochs:>6.0f}   {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
