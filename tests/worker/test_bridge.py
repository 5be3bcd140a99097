"""``worker.bridge.run_training``: which epochs save a checkpoint (the last one always,
before it on a time interval or when asked), and that a resumed run continues after
the saved epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpo.schemas import Objective, TrainSpec, TrialSpec
from models import EpochMetrics
from worker.bridge import run_training

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _spec(epochs: int, checkpoint: str | None = None) -> TrialSpec:
    return TrialSpec(
        trial_id=1,
        study="s",
        number=0,
        attempt=1,
        params={"lr": 0.01, "batch_size": 32},
        train=TrainSpec(model="mlp", dataset="synthetic"),
        epochs=epochs,
        objective=Objective(metric="val_accuracy", direction="maximize"),
        seed=3,
        heartbeat_interval=10.0,
        timeout=60.0,
        checkpoint=checkpoint,
    )


def _saves(tmp_path: Path, epochs: int, **kwargs) -> list[int]:  # type: ignore[no-untyped-def]
    """Epochs whose report carried a checkpoint."""
    saved: list[int] = []

    def on_epoch(metrics: EpochMetrics, path: str | None) -> bool:
        if path is not None:
            saved.append(metrics.epoch)
            # the file holds this very epoch when the report names it
            assert torch.load(path, weights_only=True)["epoch"] == metrics.epoch
        return False

    run_training(_spec(epochs), on_epoch, checkpoint_to=tmp_path / "c.pt", **kwargs)
    return saved


def test_interval_zero_saves_every_epoch(tmp_path: Path) -> None:
    assert _saves(tmp_path, 4, checkpoint_every=0.0) == [1, 2, 3, 4]


def test_a_long_interval_saves_only_the_last_epoch(tmp_path: Path) -> None:
    # Promotions (Hyperband/ASHA) continue from the parent's final epoch: never skipped.
    assert _saves(tmp_path, 4, checkpoint_every=3600.0) == [4]


def test_checkpoint_now_saves_the_epoch_it_is_asked_at(tmp_path: Path) -> None:
    asked = iter([False, True, False, False, False])
    saved = _saves(tmp_path, 5, checkpoint_every=3600.0, checkpoint_now=lambda: next(asked))
    assert saved == [2, 5]


def test_without_a_folder_nothing_is_saved(tmp_path: Path) -> None:
    seen: list[str | None] = []
    run_training(_spec(2), lambda m, p: seen.append(p) or False, checkpoint_every=0.0)
    assert seen == [None, None]


def test_a_run_resumes_after_the_saved_epoch(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    first: list[int] = []
    run_training(_spec(2), lambda m, p: first.append(m.epoch) or False, checkpoint_to=path)
    later: list[int] = []
    run_training(_spec(4, checkpoint=str(path)), lambda m, p: later.append(m.epoch) or False)
    assert first == [1, 2] and later == [3, 4]
