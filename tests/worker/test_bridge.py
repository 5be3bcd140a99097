"""``worker.bridge.run_training``: which epochs save a checkpoint (the last one always,
before it on a time interval or when asked), and that a resumed run continues after
the saved epoch, or finishes from it when it holds the final epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpo.schemas import Objective, TrainSpec, TrialSpec
from models import EpochMetrics
from worker.bridge import run_training

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _spec(
    epochs: int, checkpoint: str | None = None, checkpoint_step: int | None = None
) -> TrialSpec:
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
        checkpoint_step=checkpoint_step,
    )


def _saves(tmp_path: Path, epochs: int, **kwargs) -> list[int]:  # type: ignore[no-untyped-def]
    """Epochs whose report carried a checkpoint."""
    saved: list[int] = []

    def on_epoch(metrics: EpochMetrics, path: str | None) -> bool:
        if path is not None:
            saved.append(metrics.epoch)
            # the file holds this very epoch when the report names it (by its path
            # relative to the trial's folder, where it lies)
            assert path == "c.pt"
            assert torch.load(tmp_path / path, weights_only=True)["epoch"] == metrics.epoch
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
    run_training(_spec(4), lambda m, p: later.append(m.epoch) or False, resume_from=path)
    assert first == [1, 2] and later == [3, 4]


def _trained(path: Path, epochs: int) -> list[EpochMetrics]:
    """Run a whole trial of ``epochs`` saving every epoch at ``path``; its metrics."""
    seen: list[EpochMetrics] = []
    run_training(
        _spec(epochs), lambda m, p: seen.append(m) or False, checkpoint_to=path, checkpoint_every=0
    )
    return seen


@pytest.mark.parametrize("server_has_it", [True, False])
def test_a_checkpoint_at_the_final_epoch_finishes_without_training(
    tmp_path: Path, server_has_it: bool
) -> None:
    """An attempt killed after its last epoch (before its finish): the retry trains no
    further epoch on top of the final weights, and its result is the final epoch's.
    It reports that epoch only when the server never got it (killed between the save
    and the report): no step is reported twice."""
    path = tmp_path / "c.pt"
    final = _trained(path, 3)[-1]
    weights = torch.load(path, weights_only=True)["model"]
    reported: list[tuple[EpochMetrics, str | None]] = []
    result = run_training(
        _spec(3, checkpoint="s/trial-0/c.pt", checkpoint_step=3 if server_has_it else 2),
        lambda m, p: reported.append((m, p)) or False,
        checkpoint_to=path,
        resume_from=path,
    )
    assert result.final == final and not result.stopped_early and result.epochs_run == 0
    assert reported == ([] if server_has_it else [(final, "c.pt")])
    after = torch.load(path, weights_only=True)["model"]
    assert all(torch.equal(weights[k], after[k]) for k in weights)


def test_a_final_checkpoint_without_metrics_trains_from_scratch(tmp_path: Path) -> None:
    """A checkpoint at the final epoch that holds no metrics (saved by an older
    version) cannot give the result: the retry trains from epoch 1 and gets the same
    result as an uninterrupted run, not one extra epoch on top of the final weights."""
    path = tmp_path / "c.pt"
    whole = _trained(path, 3)
    state = torch.load(path, weights_only=True)
    del state["metrics"]
    torch.save(state, path)
    again: list[EpochMetrics] = []
    run_training(_spec(3), lambda m, p: again.append(m) or False, resume_from=path)
    assert [m.epoch for m in again] == [1, 2, 3]
    assert again[-1].val_loss == whole[-1].val_loss


@pytest.mark.parametrize("server_has_it", [True, False])
def test_a_checkpoint_ahead_of_the_server_reports_its_epoch_first(
    tmp_path: Path, server_has_it: bool
) -> None:
    """Killed between the save of epoch 2 and its report: the server's checkpoint step
    is 1, the file holds epoch 2. The retry reports epoch 2 from the saved metrics
    before training epoch 3, so no step goes missing (and none is reported twice)."""
    path = tmp_path / "c.pt"
    whole = _trained(path, 2)
    reported: list[tuple[int, str | None]] = []
    run_training(
        _spec(4, checkpoint="s/trial-0/c.pt", checkpoint_step=2 if server_has_it else 1),
        lambda m, p: reported.append((m.epoch, p)) or False,
        checkpoint_to=path,
        resume_from=path,
        checkpoint_every=0,
    )
    caught_up = [] if server_has_it else [(2, "c.pt")]
    assert reported == [*caught_up, (3, "c.pt"), (4, "c.pt")]
    assert whole[-1].epoch == 2


def test_a_parents_checkpoint_is_not_reported_as_the_childs(tmp_path: Path) -> None:
    """A promoted trial resumes from its parent's file: it trains on from there and
    never reports the parent's epoch as its own."""
    parent = tmp_path / "parent.pt"
    _trained(parent, 2)
    reported: list[int] = []
    run_training(
        _spec(4, checkpoint="s/trial-9/parent.pt", checkpoint_step=2),
        lambda m, p: reported.append(m.epoch) or False,
        checkpoint_to=tmp_path / "child.pt",
        resume_from=parent,
    )
    assert reported == [3, 4]
