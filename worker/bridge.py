"""The bridge between a trial spec (from the server) and ``models/`` (torch).

Turns a :class:`~hpo.schemas.TrialSpec` into a data set, a model and a training config,
and runs training with a per-epoch callback. Knows nothing of HTTP: ``worker.job``
supplies the callback that reports to the server.
"""

from __future__ import annotations

from collections.abc import Callable

from hpo.schemas import TrialSpec
from models import (
    EpochMetrics,
    TrainConfig,
    TrainResult,
    build_model,
    load_dataset,
    seed_everything,
    select_device,
    train,
)

__all__ = ["objective_of", "run_training"]


def objective_of(metrics: EpochMetrics, metric: str) -> float:
    """The objective value of one epoch's metrics (KeyError names the missing metric)."""
    values = metrics.as_dict()
    if metric not in values:
        raise KeyError(f"training reports no metric {metric!r}; it reports {sorted(values)}")
    return float(values[metric])


def run_training(
    spec: TrialSpec,
    on_epoch: Callable[[EpochMetrics], bool],
    *,
    device: str | None = None,
) -> TrainResult:
    """Train the spec's model on its data set for ``spec.epochs`` epochs.

    ``on_epoch`` returns True to stop early. The data set is cached per process (loaded
    once per worker, not once per trial). Raises ``ValueError`` for bad parameters and
    ``models.NonFiniteLossError`` when the loss diverges.
    """
    seed_everything(spec.seed)
    dataset = load_dataset(spec.train.dataset)
    model = build_model(spec.train.model, dataset, spec.params)
    config = TrainConfig.from_params(spec.params, epochs=spec.epochs)
    return train(
        model,
        dataset,
        config,
        on_epoch=on_epoch,
        device=select_device(device),
        seed=spec.seed,
    )
