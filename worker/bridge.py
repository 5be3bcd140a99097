"""The bridge between a trial spec (from the server) and ``models/`` (torch).

Turns a :class:`~hpo.schemas.TrialSpec` into a data set, a model, an optimizer and a
training config, resumes from the spec's checkpoint when there is one, saves checkpoints
(at the last epoch always, before it at most once per ``checkpoint_every`` seconds) and
runs training with a per-epoch callback. Knows nothing of HTTP: ``worker.job`` supplies
the callback that reports to the server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch

from hpo.artifacts import trial_folder
from hpo.schemas import TrialSpec
from models import (
    Checkpoint,
    EpochMetrics,
    TrainConfig,
    TrainResult,
    build_model,
    build_optimizer,
    load_checkpoint,
    load_dataset,
    save_checkpoint,
    seed_everything,
    select_device,
    train,
)

__all__ = ["CHECKPOINT_FILE", "checkpoint_path", "objective_of", "run_training"]

log = logging.getLogger(__name__)


def objective_of(metrics: EpochMetrics, metric: str) -> float:
    """The objective value of one epoch's metrics (KeyError names the missing metric)."""
    values = metrics.as_dict()
    if metric not in values:
        raise KeyError(f"training reports no metric {metric!r}; it reports {sorted(values)}")
    return float(values[metric])


#: The built-in training's checkpoint file, in the trial's artifact folder.
CHECKPOINT_FILE = "checkpoint.pt"


def checkpoint_path(artifact_dir: Path, spec: TrialSpec) -> Path:
    """Where this trial's checkpoint lives: one file per trial, overwritten each epoch
    (shared storage in fleet mode, so a retry on another machine finds it)."""
    return artifact_dir / trial_folder(spec.study, spec.number) / CHECKPOINT_FILE


def run_training(
    spec: TrialSpec,
    on_epoch: Callable[[EpochMetrics, str | None], bool],
    *,
    device: str | None = None,
    checkpoint_to: Path | None = None,
    resume_from: Path | None = None,
    checkpoint_every: float = 0.0,
    checkpoint_now: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train the spec's model on its data set up to ``spec.epochs`` epochs.

    ``on_epoch(metrics, checkpoint)`` gets each epoch's metrics and the checkpoint
    saved after it (``checkpoint_to``'s name: its path relative to the trial's artifact
    folder, where it lies; None when none was saved) and returns True to stop.
    With ``checkpoint_to``, an epoch saves a checkpoint there when it is the last one,
    when ``checkpoint_now()`` says so (a worker about to hand the trial back), or when
    ``checkpoint_every`` seconds have passed since this attempt's last save (or its
    start; 0: every epoch); it holds the epoch's metrics. Resumes after the epoch of
    ``resume_from`` (where the spec's checkpoint lies) when that file is readable. A
    checkpoint ahead of the step the server stored (the worker died between the save
    and its report) has its epoch reported first, from its saved metrics, so no step
    goes unreported; when it holds the final epoch, nothing trains and the result is
    that epoch's saved metrics. The data set is cached per process. Raises
    ``ValueError`` for bad parameters and ``models.NonFiniteLossError`` when the loss
    diverges.
    """
    seed_everything(spec.seed)
    dataset = load_dataset(spec.train.dataset)
    where = select_device(device)
    config = TrainConfig.from_params(spec.params, epochs=spec.epochs)

    def fresh() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        seed_everything(spec.seed)
        built = build_model(spec.train.model, dataset, spec.params).to(where)
        return built, build_optimizer(built, config)

    model, optimizer = fresh()
    start = 1
    own = None if checkpoint_to is None else checkpoint_to.resolve()
    if resume_from is not None:
        try:
            resumed = load_checkpoint(resume_from, model, optimizer, map_location=where)
        except (OSError, ValueError) as err:  # gone or foreign: start over, don't fail
            log.warning("trial %s: cannot resume (%s); training from scratch", spec.trial_id, err)
            model, optimizer = fresh()
        else:
            mine = resumed.path.name if resumed.path.resolve() == own else None
            if resumed.epoch < config.epochs:
                start = resumed.epoch + 1
                log.info("trial %s resumes at epoch %d", spec.trial_id, start)
                caught_up = _catch_up(spec, resumed, mine, on_epoch)
                if caught_up is not None:
                    return caught_up
            else:
                done = _replay(spec, resumed, mine, config.epochs, on_epoch)
                if done is not None:
                    return done
                # Training the last epoch again on top of it would not give the
                # trial's result: only a fresh run does.
                log.warning(
                    "trial %s: checkpoint ends at epoch %d of %d without its metrics; "
                    "training from scratch",
                    spec.trial_id,
                    resumed.epoch,
                    config.epochs,
                )
                model, optimizer = fresh()

    last_save = time.monotonic()

    def _epoch(metrics: EpochMetrics) -> bool:
        nonlocal last_save
        saved = None
        # The last epoch always: a promoted configuration (Hyperband/ASHA) continues from
        # the checkpoint at its parent's final epoch. Before it, on a time interval: a
        # save costs ~10-20 ms for a mid-sized model, a real share of short epochs, and
        # a crash then retrains at most one interval.
        due = (
            metrics.epoch >= config.epochs
            or time.monotonic() - last_save >= checkpoint_every
            or (checkpoint_now is not None and checkpoint_now())
        )
        if checkpoint_to is not None and due:
            save_checkpoint(checkpoint_to, model, optimizer, metrics.epoch, metrics.as_dict())
            saved = checkpoint_to.name
            last_save = time.monotonic()
        return on_epoch(metrics, saved)

    return train(
        model,
        dataset,
        config,
        on_epoch=_epoch,
        device=where,
        seed=spec.seed,
        start_epoch=start,
        optimizer=optimizer,
    )


def _saved_metrics(resumed: Checkpoint) -> EpochMetrics | None:
    """The epoch metrics saved in a checkpoint, or None (saved without, or of another
    shape: not ours to trust)."""
    if resumed.metrics is None:
        return None
    try:
        return EpochMetrics(epoch=resumed.epoch, **resumed.metrics)
    except TypeError:
        return None


def _unreported(spec: TrialSpec, epoch: int) -> bool:
    """Whether the server has no report of ``epoch`` with a checkpoint yet."""
    return spec.checkpoint_step is None or spec.checkpoint_step < epoch


def _catch_up(
    spec: TrialSpec,
    resumed: Checkpoint,
    mine: str | None,
    on_epoch: Callable[[EpochMetrics, str | None], bool],
) -> TrainResult | None:
    """Report the epoch of a checkpoint of the trial's own that the server never
    heard of (saved, then the worker died before the report), so training goes on
    after it with no step missing. A result when that report answered stop."""
    saved = _saved_metrics(resumed)
    if mine is None or saved is None or not _unreported(spec, saved.epoch):
        return None
    if on_epoch(saved, mine):
        return TrainResult(history=[saved], stopped_early=True, epochs_run=0)
    return None


def _replay(
    spec: TrialSpec,
    resumed: Checkpoint,
    mine: str | None,
    epochs: int,
    on_epoch: Callable[[EpochMetrics, str | None], bool],
) -> TrainResult | None:
    """The result of an attempt whose checkpoint already holds the trial's final epoch
    (an earlier attempt trained it all and died before its finish): that epoch's saved
    metrics, reported again only when the server never got them (``checkpoint_step``
    behind), so no step is reported twice. None when the checkpoint cannot give it
    (past the final epoch, or saved without metrics)."""
    final = _saved_metrics(resumed)
    if resumed.epoch != epochs or final is None:
        return None
    log.info("trial %s: checkpoint holds its final epoch %d; not training", spec.trial_id, epochs)
    if _unreported(spec, final.epoch):
        on_epoch(final, mine)
    return TrainResult(history=[final], stopped_early=False, epochs_run=0)
