"""Checkpoints: a model's and its optimizer's state after an epoch, saved atomically.

A resumed attempt loads the last checkpoint and continues at the next epoch, so a
trial whose worker died does not retrain from epoch 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]


@dataclass(frozen=True)
class Checkpoint:
    """Where a checkpoint lies, the last epoch it contains and, when it was saved
    with them, that epoch's metrics (a retry that finds the final epoch saved finishes
    from them instead of training again)."""

    path: Path
    epoch: int
    metrics: dict[str, float] | None = None


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    metrics: Mapping[str, float] | None = None,
) -> Checkpoint:
    """Write model + optimizer state after ``epoch`` (and that epoch's ``metrics``,
    when given) to ``path``.

    Written to a temporary file and renamed, so a reader (or a crash mid-write) never
    sees a half-written checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    values = None if metrics is None else {str(k): float(v) for k, v in metrics.items()}
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "metrics": values,
    }
    torch.save(state, tmp)
    os.replace(tmp, path)
    return Checkpoint(path=path, epoch=epoch, metrics=values)


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    map_location: str | torch.device = "cpu",
) -> Checkpoint:
    """Restore ``model`` and ``optimizer`` from ``path``; return where it lies, the
    epoch it ended and its metrics (None for a checkpoint saved without them).

    Raises ``FileNotFoundError`` when the file is gone and ``ValueError`` when it is
    not a checkpoint of this shape. Loads with ``weights_only=True``: a checkpoint is
    data, never code.
    """
    state = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or not {"model", "optimizer", "epoch"} <= state.keys():
        raise ValueError(f"{path} is not a checkpoint written by save_checkpoint")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, KeyError, ValueError) as err:
        raise ValueError(f"checkpoint {path} does not fit this model: {err}") from None
    metrics = state.get("metrics")
    if metrics is not None and not (
        isinstance(metrics, dict) and all(isinstance(v, float) for v in metrics.values())
    ):
        raise ValueError(f"{path} holds metrics of an unknown shape")
    return Checkpoint(path=Path(path), epoch=int(state["epoch"]), metrics=metrics)
