"""The search-quality benchmark's problems: the registry (``PROBLEMS``, ``make_problem``,
the ``tune``/``holdout`` suites), and the three oldest problems. Standard test functions
of 2 to 20 dimensions and mixed and conditional spaces are in
``benchmarks.problems_synthetic``; model tuning on bundled data in
``benchmarks.problems_sklearn``.

Suites guard against tuning to the benchmark: defaults are developed looking at the
``tune`` problems only; ``holdout`` ones (other shapes, dimensions and models) are run
for the figures of a finished change, not while changing it.

A :class:`Problem` is a search space (as users write it), an objective to minimize and
what normalizing its regret needs. Objectives return ``None`` when the evaluation failed
(a diverged training run), which drivers record as a failed trial.

* ``branin``: 2-D, known minimum 0.397887 (three global minima).
* ``hartmann6``: 6-D on the unit cube, known minimum -3.32237.
* ``digits``: validation error of a torch MLP trained a few epochs on scikit-learn's
  bundled digits (through ``models/``), over lr (log), batch size (powers of two),
  lr decay (log), hidden layers, units (log) and dropout. Deterministic: the split,
  the initial weights and the batch order are seeded by constants, so the error is a
  function of the parameters alone. Its best value is unknown; the benchmark estimates
  it (see ``benchmarks.search_quality``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from benchmarks.problem import Problem
from search import SearchSpace

__all__ = [
    "PROBLEMS",
    "SUITES",
    "Problem",
    "branin",
    "digits_error",
    "hartmann6",
    "make_problem",
    "suite_problems",
]


def branin(params: Mapping[str, Any]) -> float:
    """The Branin-Hoo function on x1 in [-5, 10], x2 in [0, 15]."""
    x1, x2 = float(params["x1"]), float(params["x2"])
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(params: Mapping[str, Any]) -> float:
    """The 6-D Hartmann function on [0, 1]^6 (parameters x1..x6)."""
    x = np.array([float(params[f"x{i}"]) for i in range(1, 7)])
    inner = np.sum(_H6_A * (x - _H6_P) ** 2, axis=1)
    return float(-np.sum(_H6_ALPHA * np.exp(-inner)))


DIGITS_SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64, 128, 256]},
    "decay": {"type": "float", "low": 1e-5, "high": 0.1, "log": True},
    "hidden_layers": {"type": "int", "low": 1, "high": 3},
    "units": {"type": "int", "low": 16, "high": 128, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
}


def digits_error(params: Mapping[str, Any], *, epochs: int) -> float | None:
    """Validation error (1 - accuracy) of an MLP trained ``epochs`` epochs on digits;
    None when training diverged. One CPU thread: runs are independent processes."""
    import torch

    from models import (
        NonFiniteLossError,
        TrainConfig,
        build_model,
        load_dataset,
        seed_everything,
        train,
    )

    torch.set_num_threads(1)
    dataset = load_dataset("digits", seed=0)
    seed_everything(0)  # the same initial weights for the same architecture
    model = build_model("mlp", dataset, params)
    config = TrainConfig.from_params(params, epochs=epochs)
    try:
        result = train(model, dataset, config, seed=0)
    except NonFiniteLossError:
        return None
    assert result.final is not None
    return 1.0 - result.final.val_accuracy


def _own(name: str, smoke: bool) -> Problem | None:
    if name == "branin":
        space = SearchSpace.from_dict(
            {
                "x1": {"type": "float", "low": -5.0, "high": 10.0},
                "x2": {"type": "float", "low": 0.0, "high": 15.0},
            }
        )
        return Problem(name, space, branin, 0.397887, 10_000, "Branin, 2-D")
    if name == "hartmann6":
        space = SearchSpace.from_dict(
            {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(1, 7)}
        )
        return Problem(name, space, hartmann6, -3.32237, 10_000, "Hartmann, 6-D")
    if name == "digits":
        epochs = 1 if smoke else 3

        def objective(params: Mapping[str, Any]) -> float | None:
            return digits_error(params, epochs=epochs)

        return Problem(
            name,
            SearchSpace.from_dict(DIGITS_SPACE),
            objective,
            None,
            8 if smoke else 300,
            f"MLP on digits, validation error after {epochs} epochs, 6-D mixed",
        )
    return None


def make_problem(name: str, *, smoke: bool = False) -> Problem:
    """Build problem ``name`` (``KeyError`` if unknown); ``smoke`` makes digits tiny and
    the model-tuning problems' reference samples small."""
    from benchmarks.problems_sklearn import SKLEARN
    from benchmarks.problems_synthetic import SYNTHETIC

    problem = _own(name, smoke)
    if problem is not None:
        return problem
    if name in SYNTHETIC:
        return SYNTHETIC[name]()
    if name in SKLEARN:
        built = SKLEARN[name]()
        return replace(built, reference_draws=8) if smoke else built
    raise KeyError(f"unknown problem {name!r}; known: {', '.join(PROBLEMS)}")


#: Every problem, by dimension within each kind: functions, mixed and conditional
#: spaces, model tuning.
PROBLEMS: tuple[str, ...] = (
    "branin",
    "camel",
    "hartmann3",
    "rosenbrock4",
    "ackley5",
    "michalewicz5",
    "hartmann6",
    "rastrigin6",
    "levy8",
    "styblinski10",
    "ackley10",
    "ellipsoid20",
    "mixed_levy",
    "mixed_ackley",
    "conditional",
    "svm",
    "forest",
    "boosting",
    "digits",
)
SUITES: tuple[str, ...] = ("tune", "holdout", "all")


def suite_problems(suite: str) -> list[str]:
    """The problems of ``suite`` ("all": every one), in ``PROBLEMS`` order."""
    if suite == "all":
        return list(PROBLEMS)
    return [name for name in PROBLEMS if make_problem(name, smoke=True).suite == suite]
