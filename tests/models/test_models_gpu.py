"""The GPU paths on a real GPU: device selection, training the MLP and the CNN on CUDA,
checkpoints crossing between a GPU and a CPU worker, and a slot's
``CUDA_VISIBLE_DEVICES`` seen by a fresh process.

Skipped where torch sees no CUDA device (CI and the development machines have none; the
same logic is covered there by ``test_models_device.py`` and ``tests/worker/test_worker_gpus.py``
with a faked device count). Needs only torch, NumPy and scikit-learn, so it also runs
with ``--noconftest`` on a GPU machine that lacks the service's other dependencies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models import (
    TrainConfig,
    build_model,
    build_optimizer,
    load_checkpoint,
    load_dataset,
    save_checkpoint,
    select_device,
    train,
)
from worker.gpus import plan_slots

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

PARAMS = {
    "lr": 3e-3,
    "batch_size": 64,
    "optimizer": "adam",
    "hidden_layers": 2,
    "units": 64,
    "conv_blocks": 1,
    "filters": 16,
}


def test_auto_and_explicit_selection_pick_the_gpu() -> None:
    assert select_device(None).type == "cuda"
    assert select_device("cuda:0") == torch.device("cuda:0")
    assert select_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_each_model_family_trains_on_the_gpu(family: str) -> None:
    dataset = load_dataset("digits")
    model = build_model(family, dataset, PARAMS)
    config = TrainConfig.from_params(PARAMS, epochs=3)
    result = train(model, dataset, config, device="cuda", seed=0)
    assert all(p.device.type == "cuda" for p in model.parameters())
    assert len(result.history) == 3
    assert result.final.val_accuracy > 0.8  # digits: a working model is far above 0.1


def test_training_on_the_gpu_is_reproducible_with_a_seed() -> None:
    dataset = load_dataset("digits")
    config = TrainConfig.from_params(PARAMS, epochs=2)
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model("mlp", dataset, PARAMS)
        losses.append(train(model, dataset, config, device="cuda", seed=7).final.val_loss)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


@pytest.mark.parametrize(("first", "then"), [("cuda", "cpu"), ("cpu", "cuda")])
def test_checkpoint_moves_between_gpu_and_cpu_workers(
    tmp_path: Path, first: str, then: str
) -> None:
    """A retry or a promotion may land on a worker with other hardware: a checkpoint
    written on one device resumes on the other, Adam's state included."""
    dataset = load_dataset("digits")
    config = TrainConfig.from_params(PARAMS, epochs=4)
    torch.manual_seed(0)
    model = build_model("cnn", dataset, PARAMS)
    optimizer = build_optimizer(model, config)
    half = TrainConfig.from_params(PARAMS, epochs=2)
    train(model, dataset, half, device=first, seed=1, optimizer=optimizer)
    saved = save_checkpoint(tmp_path / "ckpt.pt", model, optimizer, epoch=2)

    resumed = build_model("cnn", dataset, PARAMS).to(then)
    resumed_opt = build_optimizer(resumed, config)
    loaded = load_checkpoint(saved.path, resumed, resumed_opt, map_location=then)
    assert loaded.epoch == 2
    for a, b in zip(model.parameters(), resumed.parameters(), strict=True):
        assert b.device.type == then
        assert torch.equal(a.detach().cpu(), b.detach().cpu())
    state_devices = {
        t.device.type
        for s in resumed_opt.state.values()
        for t in s.values()
        if isinstance(t, torch.Tensor) and t.dim() > 0
    }
    assert state_devices == {then}
    result = train(
        resumed,
        dataset,
        config,
        device=then,
        seed=1,
        start_epoch=loaded.epoch + 1,
        optimizer=resumed_opt,
    )
    assert [m.epoch for m in result.history] == [3, 4]
    assert result.final.val_accuracy > 0.8


def _devices_seen(env: dict[str, str]) -> int:
    code = "import torch; print(torch.cuda.device_count())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return int(out.stdout.strip())


def test_a_slot_process_sees_exactly_its_gpu() -> None:
    environ = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    slots = plan_slots(None, environ=environ, device_count=torch.cuda.device_count())
    assert len(slots) == torch.cuda.device_count()
    assert slots[0].device == "cuda:0"
    assert _devices_seen(slots[0].env) == 1
    cpu = plan_slots([], environ=environ, device_count=torch.cuda.device_count(), cpu_slots=2)
    assert [s.device for s in cpu] == ["cpu", "cpu"]
    assert _devices_seen(cpu[0].env) == 0
