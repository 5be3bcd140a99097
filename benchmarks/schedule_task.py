"""A training task where the schedule matters: SGD on a noisy quadratic model.

The noisy quadratic model (Zhang et al., 2019, "Which algorithmic choices matter at
which batch sizes?") predicts how learning rate and batch size trade progress for noise
in neural-network training, in closed form. A loss ``1/2 sum_i h_i x_i^2`` over
curvatures ``h_i`` spread over decades; each SGD step with learning rate ``lr`` on a
batch of ``b`` samples sees gradient noise of variance ``c_i / b`` (``c_i = sigma h_i``).
The expected ``x_i^2`` after one step is ``(1 - lr h_i)^2 m_i + lr^2 c_i / b``, so:

* a large ``lr`` (and small batches, more steps per epoch) makes progress along the
  flat directions, but leaves a noise floor of about ``lr sigma / (2 b)``;
* a small ``lr`` (or large batches) has a low floor and crawls;
* ``lr h_max > 2`` diverges.

No constant configuration is best at every epoch: high learning rates lead early and
lose late, the curves cross, and a schedule (large steps first, then small ones or
larger batches) beats every constant. That is what population-based training should
find. A task's shape (curvature spread, noise, samples per epoch) is drawn from its
seed, so a method is measured on a family of tasks, not one function.

Deterministic: the state is the vector of expected ``x_i^2``, an epoch is the closed
form of its steps, so a checkpoint is that vector and a copy of it resumes exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from search import SearchSpace

__all__ = ["DIVERGED", "SPACE", "ScheduleTask", "make_task"]

#: The loss reported for a diverged run (and the cap of every loss).
DIVERGED = 1e3
SPACE = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 1e-3, "high": 2.5, "log": True},
        "batch_size": {"type": "int", "low": 8, "high": 512, "log": True},
    }
)


@dataclass(frozen=True)
class ScheduleTask:
    """One noisy quadratic: curvatures ``h``, noise ``c`` and samples per epoch."""

    h: np.ndarray
    c: np.ndarray
    samples: int

    def initial(self) -> np.ndarray:
        """The state before the first epoch: every ``x_i^2`` at 1."""
        return np.ones_like(self.h)

    def epoch(self, state: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
        """The state after one epoch of SGD with ``params`` (``lr``, ``batch_size``)."""
        lr, batch = float(params["lr"]), int(params["batch_size"])
        steps = max(1, self.samples // batch)
        a = (1.0 - lr * self.h) ** 2
        noise = lr * lr * self.c / batch
        with np.errstate(over="ignore", invalid="ignore"):
            grown = a**steps
            # sum_{k < steps} a^k, with its limit where a == 1
            series = np.where(np.isclose(a, 1.0), steps, (1.0 - grown) / (1.0 - a))
            out = grown * state + noise * series
        return np.where(np.isfinite(out), np.minimum(out, 1e12), 1e12)

    def loss(self, state: np.ndarray) -> float:
        """The expected loss of ``state``, capped at ``DIVERGED``."""
        value = 0.5 * float(np.sum(self.h * state))
        return min(value, DIVERGED) if np.isfinite(value) else DIVERGED


def make_task(seed: int) -> ScheduleTask:
    """The task of ``seed``: 16 curvatures from 1 down to 10^-(2..3.5), noise scale
    10^-(1..2.5) and 512 to 2048 samples per epoch, all drawn from the seed."""
    rng = np.random.default_rng([seed, 0x5C4ED])
    spread = rng.uniform(2.0, 3.5)
    h = np.logspace(0.0, -spread, 16)
    sigma = 10.0 ** -rng.uniform(1.0, 2.5)
    samples = int(2 ** rng.integers(9, 12))
    return ScheduleTask(h=h, c=sigma * h, samples=samples)
