"""The training loop: learning, callbacks and early stop, the decay schedule, divergence,
determinism and resumption, and TrainConfig's validation."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from models.datasets import Dataset, load_dataset
from models.device import seed_everything
from models.registry import build_model
from models.training import (
    EpochMetrics,
    NonFiniteLossError,
    TrainConfig,
    TrainResult,
    batch_bounds,
    build_optimizer,
    decayed_lr,
    train,
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Train on one intra-op thread: these models are tiny, and on a busy 2-core machine
    OpenMP threads spin-waiting on each other make a 0.2 s run take 10 s or more."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def fresh_mlp(dataset: Dataset, seed: int = 0, **params: Any) -> nn.Module:
    seed_everything(seed)
    return build_model("mlp", dataset, {"hidden_layers": 1, "units": 32, **params})


def numbers(history: list[EpochMetrics]) -> list[tuple[float, ...]]:
    """Metrics without the wall-clock time, which never repeats."""
    return [(m.epoch, m.train_loss, m.val_loss, m.val_accuracy, m.lr) for m in history]


def test_mlp_learns_digits() -> None:
    ds = load_dataset("digits")
    seed_everything(0)
    model = build_model("mlp", ds, {})
    result = train(model, ds, TrainConfig(lr=1e-3, epochs=5))
    assert result.epochs_run == 5 and not result.stopped_early
    assert result.final is not None
    assert result.final.val_accuracy > 0.8  # chance is 0.1
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_callback_sees_every_epoch_in_order() -> None:
    ds = load_dataset("synthetic")
    seen: list[EpochMetrics] = []
    result = train(fresh_mlp(ds), ds, TrainConfig(epochs=3), on_epoch=seen.append)
    assert [m.epoch for m in seen] == [1, 2, 3]
    assert seen == result.history
    for metrics in seen:
        values = metrics.as_dict()
        assert set(values) == {"train_loss", "val_loss", "val_accuracy", "lr", "seconds"}
        assert all(math.isfinite(v) for v in values.values())
        assert 0.0 <= metrics.val_accuracy <= 1.0 and metrics.seconds >= 0.0


def test_callback_returning_true_stops_training() -> None:
    ds = load_dataset("synthetic")
    calls: list[int] = []

    def stop_at_two(metrics: EpochMetrics) -> bool:
        calls.append(metrics.epoch)
        return metrics.epoch == 2

    result = train(fresh_mlp(ds), ds, TrainConfig(epochs=5), on_epoch=stop_at_two)
    assert calls == [1, 2]
    assert result.epochs_run == 2 and result.stopped_early
    assert result.final is result.history[-1] and result.final.epoch == 2


def test_stop_at_the_last_epoch_is_not_early() -> None:
    ds = load_dataset("synthetic")
    result = train(fresh_mlp(ds), ds, TrainConfig(epochs=2), on_epoch=lambda m: True)
    assert result.epochs_run == 1 and result.stopped_early
    result = train(fresh_mlp(ds), ds, TrainConfig(epochs=1), on_epoch=lambda m: True)
    assert result.epochs_run == 1 and not result.stopped_early


def test_time_based_decay_per_optimizer_step() -> None:
    ds = load_dataset("synthetic")  # 800 training samples
    config = TrainConfig(lr=0.05, decay=0.3, batch_size=100, optimizer="sgd", epochs=2)
    model = fresh_mlp(ds)
    optimizer = build_optimizer(model, config)
    used: list[float] = []
    optimizer.register_step_pre_hook(
        lambda opt, args, kwargs: used.append(opt.param_groups[0]["lr"])
    )

    result = train(model, ds, config, optimizer=optimizer)

    steps = 8 * 2
    assert used == pytest.approx([0.05 / (1 + 0.3 * k) for k in range(steps)], rel=1e-12)
    # After k steps the optimizer holds the rate of step k, and each epoch reports it.
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05 / (1 + 0.3 * steps), rel=1e-12)
    assert [m.lr for m in result.history] == pytest.approx([0.05 / 3.4, 0.05 / 5.8], rel=1e-12)


def test_no_decay_keeps_the_rate() -> None:
    ds = load_dataset("synthetic")
    result = train(fresh_mlp(ds), ds, TrainConfig(lr=0.01, epochs=2))
    assert [m.lr for m in result.history] == [0.01, 0.01]
    assert decayed_lr(0.01, 0.0, 10_000) == 0.01


def test_start_epoch_numbers_epochs_and_continues_the_schedule() -> None:
    ds = load_dataset("synthetic")
    config = TrainConfig(lr=0.1, decay=0.5, batch_size=200, epochs=4)  # 4 steps per epoch
    seen: list[int] = []
    result = train(
        fresh_mlp(ds), ds, config, start_epoch=3, on_epoch=lambda m: seen.append(m.epoch)
    )
    assert seen == [3, 4] and result.epochs_run == 2
    assert result.history[0].lr == pytest.approx(0.1 / (1 + 0.5 * 12))

    empty = train(fresh_mlp(ds), ds, config, start_epoch=5)
    assert empty == TrainResult(history=[], stopped_early=False, epochs_run=0)
    assert empty.final is None
    with pytest.raises(ValueError, match="start_epoch"):
        train(fresh_mlp(ds), ds, config, start_epoch=0)


def test_resumed_run_matches_an_uninterrupted_one() -> None:
    ds = load_dataset("synthetic")
    config = TrainConfig(lr=1e-2, decay=0.01, epochs=4)
    params = {"dropout": 0.3, "batch_norm": True}

    whole = train(fresh_mlp(ds, **params), ds, config, seed=7)

    model = fresh_mlp(ds, **params)
    optimizer = build_optimizer(model, config)
    first = train(
        model, ds, TrainConfig(lr=1e-2, decay=0.01, epochs=2), seed=7, optimizer=optimizer
    )
    rest = train(model, ds, config, seed=7, optimizer=optimizer, start_epoch=3)
    assert numbers(first.history + rest.history) == numbers(whole.history)


def test_a_resumed_run_trains_with_its_own_changed_hyperparameters(tmp_path: Any) -> None:
    """A PBT segment continues another trial's checkpoint with changed lr, decay,
    momentum and weight decay: the restored optimizer must take the new ones."""
    from models.checkpoint import load_checkpoint, save_checkpoint

    ds = load_dataset("synthetic")
    old = TrainConfig(optimizer="sgd", lr=1e-2, momentum=0.5, weight_decay=0.0, epochs=2)
    model = fresh_mlp(ds)
    optimizer = build_optimizer(model, old)
    first = train(model, ds, old, seed=7, optimizer=optimizer)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model, optimizer, 2, first.history[-1].as_dict())

    def resume(config: TrainConfig) -> tuple[list[tuple[float, ...]], dict[str, Any]]:
        model = fresh_mlp(ds)
        opt = build_optimizer(model, old)  # as the bridge does: then the checkpoint loads
        load_checkpoint(path, model, opt)
        rest = train(model, ds, config, seed=7, optimizer=opt, start_epoch=3)
        return numbers(rest.history), dict(opt.param_groups[0])

    new = TrainConfig(optimizer="sgd", lr=3e-2, momentum=0.9, weight_decay=1e-3, epochs=4)
    same, _ = resume(TrainConfig(**{**old.__dict__, "epochs": 4}))
    changed, group = resume(new)
    assert group["momentum"] == 0.9 and group["weight_decay"] == 1e-3
    assert group["lr"] == decayed_lr(3e-2, 0.0, 3 * len(batch_bounds(len(ds.y_train), 64)))
    assert changed != same


def test_same_seed_same_metrics() -> None:
    ds = load_dataset("synthetic")
    config = TrainConfig(epochs=2, batch_size=32)
    params = {"dropout": 0.5}
    a = train(fresh_mlp(ds, **params), ds, config, seed=3)
    b = train(fresh_mlp(ds, **params), ds, config, seed=3)
    c = train(fresh_mlp(ds, **params), ds, config, seed=4)
    assert numbers(a.history) == numbers(b.history)
    assert numbers(a.history) != numbers(c.history)  # the seed drives shuffling and dropout


def test_training_leaves_the_global_rng_alone() -> None:
    ds = load_dataset("synthetic")
    model = fresh_mlp(ds, dropout=0.2)
    before = torch.get_rng_state()
    train(model, ds, TrainConfig(epochs=1))
    assert torch.equal(torch.get_rng_state(), before)


def test_huge_learning_rate_diverges_with_a_clear_error() -> None:
    # Deterministic: fixed initial weights (seeded), fixed batches (seeded), CPU arithmetic.
    # Two hidden layers multiply the exploding weights until float32 overflows to inf and
    # then inf - inf = nan within a few steps.
    ds = load_dataset("digits")
    model = fresh_mlp(ds, hidden_layers=2, units=128)
    seen: list[EpochMetrics] = []
    with pytest.raises(NonFiniteLossError) as info:
        train(model, ds, TrainConfig(lr=1e6, optimizer="sgd"), on_epoch=seen.append)
    err = info.value
    assert err.epoch == 1 and err.step is not None and err.step <= 10 and seen == []
    assert math.isnan(err.value)
    assert str(err) == f"training loss became nan at epoch 1 (step {err.step})"


def test_non_finite_inputs_fail_on_the_first_step() -> None:
    # A crafted, fully deterministic divergence: one NaN feature poisons the first batch.
    ds = load_dataset("synthetic")
    x_train = ds.x_train.clone()
    x_train[:, 0] = float("nan")
    poisoned = Dataset("poisoned", x_train, ds.y_train, ds.x_val, ds.y_val, 20, 3, (20,))
    with pytest.raises(
        NonFiniteLossError, match=r"^training loss became nan at epoch 1 \(step 1\)$"
    ):
        train(fresh_mlp(poisoned), poisoned, TrainConfig(epochs=3))


def test_batch_norm_survives_a_single_sample_tail() -> None:
    assert batch_bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]  # the lone 10th sample is merged
    assert batch_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_bounds(3, 64) == [(0, 3)]
    assert batch_bounds(3, 1) == [(0, 1), (1, 2), (2, 3)]
    ds = load_dataset("synthetic")
    assert ds.n_train % 47 == 1  # 800 = 17 * 47 + 1: the last batch would hold one sample
    result = train(fresh_mlp(ds, batch_norm=True), ds, TrainConfig(epochs=1, batch_size=47))
    assert result.epochs_run == 1


# ---- TrainConfig -------------------------------------------------------------------------


def test_from_params_reads_training_keys_and_ignores_the_rest() -> None:
    params = {
        "lr": 0.05,
        "batch_size": 32.0,
        "decay": 1e-3,
        "optimizer": "SGD",
        "momentum": 0.5,
        "weight_decay": 1e-4,
        "units": 256,
        "activation": "tanh",
    }
    config = TrainConfig.from_params(params, epochs=7)
    assert config == TrainConfig(
        lr=0.05,
        batch_size=32,
        decay=1e-3,
        optimizer="sgd",
        momentum=0.5,
        weight_decay=1e-4,
        epochs=7,
    )
    assert isinstance(config.batch_size, int)
    assert TrainConfig.from_params({}, epochs=3) == TrainConfig(epochs=3)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": "fast"}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 12.5}, "batch_size"),
        ({"decay": -0.1}, "decay"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.5}, "momentum"),
        ({"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_from_params_errors_name_the_parameter(params: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}: "):
        TrainConfig.from_params(params, epochs=5)


@pytest.mark.parametrize("epochs", [0, -1, 2.5])
def test_bad_epochs(epochs: Any) -> None:
    with pytest.raises(ValueError, match=r"^epochs: "):
        TrainConfig.from_params({}, epochs=epochs)


def test_unknown_optimizer_lists_known_ones() -> None:
    with pytest.raises(ValueError, match=r"^optimizer: unknown 'rmsprop'; known: adam, sgd$"):
        TrainConfig(optimizer="rmsprop")


def test_build_optimizer_follows_the_config() -> None:
    model = nn.Linear(3, 2)
    sgd = build_optimizer(
        model, TrainConfig(optimizer="sgd", lr=0.1, momentum=0.8, weight_decay=0.01)
    )
    assert isinstance(sgd, torch.optim.SGD)
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (
        0.1,
        0.8,
        False,
        0.01,
    )
    assert isinstance(build_optimizer(model, TrainConfig()), torch.optim.Adam)
