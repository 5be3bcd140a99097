"""The training loop: mini-batch cross-entropy with a time-based learning-rate decay.

:func:`train` is what a worker calls for one trial: it trains for ``config.epochs`` epochs,
evaluates on the validation split after every epoch and hands the :class:`EpochMetrics` to
``on_epoch``, whose answer is how early-stopping strategies (Hyperband, ASHA, median) act.

Reproducibility contract: with the same initial model, data, config, ``seed`` and
``start_epoch``, two runs produce identical metrics (on the CPU; GPU kernels may not be
deterministic). Shuffling and dropout are seeded per epoch from ``(seed, epoch)``, so a run
resumed at epoch *k* from a checkpoint sees the same batches as an uninterrupted one.
The global RNG state of the caller is left as it was.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# Imported for its side effect on timing, not used here: every torch.optim optimizer's
# constructor imports torch._dynamo on its first call in a process (seconds of imports).
# Paying it when a worker imports ``models`` at start-up keeps it out of the worker's
# first trial (``benchmarks.worker_overhead`` measures it; figures in the README).
import torch._dynamo
from torch import nn
from torch.nn import functional as F

from models._params import as_choice, as_float, as_int, require
from models.datasets import Dataset

__all__ = [
    "OPTIMIZERS",
    "EpochMetrics",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "apply_config",
    "batch_bounds",
    "build_optimizer",
    "decayed_lr",
    "evaluate",
    "train",
]

#: Optimizer names :class:`TrainConfig` accepts.
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")

# Validation runs without gradients, so it can use far larger batches than training.
_MIN_EVAL_BATCH = 1024


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimizer, learning rate and its decay, batch size, epochs.

    ``decay`` is time-based: the step with index ``t`` (optimizer steps counted from 0)
    uses ``lr / (1 + decay * t)``. ``optimizer`` is ``"adam"`` (``weight_decay`` as an L2
    term, i.e. ``torch.optim.Adam``) or ``"sgd"`` (with ``momentum``, not Nesterov).
    Construction coerces harmless spellings (``64.0`` -> ``64``, ``"Adam"`` -> ``"adam"``)
    and raises ``ValueError`` naming the field for anything out of range.
    """

    lr: float = 1e-3
    batch_size: int = 64
    decay: float = 0.0
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 10

    def __post_init__(self) -> None:
        # Frozen dataclass: coerced values are written back with object.__setattr__.
        lr = as_float("lr", self.lr)
        require(lr > 0.0, "lr", f"must be > 0, got {lr}")
        batch_size = as_int("batch_size", self.batch_size)
        require(batch_size >= 1, "batch_size", f"must be >= 1, got {batch_size}")
        decay = as_float("decay", self.decay)
        require(decay >= 0.0, "decay", f"must be >= 0, got {decay}")
        optimizer = as_choice("optimizer", self.optimizer, OPTIMIZERS)
        momentum = as_float("momentum", self.momentum)
        require(0.0 <= momentum < 1.0, "momentum", f"must be in [0, 1), got {momentum}")
        weight_decay = as_float("weight_decay", self.weight_decay)
        require(weight_decay >= 0.0, "weight_decay", f"must be >= 0, got {weight_decay}")
        epochs = as_int("epochs", self.epochs)
        require(epochs >= 1, "epochs", f"must be >= 1, got {epochs}")
        for name, value in (
            ("lr", lr),
            ("batch_size", batch_size),
            ("decay", decay),
            ("optimizer", optimizer),
            ("momentum", momentum),
            ("weight_decay", weight_decay),
            ("epochs", epochs),
        ):
            object.__setattr__(self, name, value)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, epochs: int) -> TrainConfig:
        """Read the training keys of a trial's parameter dict; other keys are ignored.

        ``epochs`` is the trial's budget and comes from the caller, never from ``params``.
        Missing keys take the field defaults. Raises ``ValueError`` naming the parameter.
        """
        keys = ("lr", "batch_size", "decay", "optimizer", "momentum", "weight_decay")
        return cls(epochs=epochs, **{key: params[key] for key in keys if key in params})


@dataclass(frozen=True)
class EpochMetrics:
    """What one epoch produced. ``epoch`` is 1-based; ``lr`` is the learning rate the
    optimizer holds at the end of the epoch (the one the next step would use);
    ``seconds`` covers training and validation, not the ``on_epoch`` callback."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float

    def as_dict(self) -> dict[str, float]:
        """The metric values by name (``epoch`` excluded: it is the report's step)."""
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "lr": self.lr,
            "seconds": self.seconds,
        }


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped at once, the model is garbage.

    ``epoch`` is 1-based; ``step`` is the 1-based global optimizer step during which the
    training loss diverged (``None`` when it was the validation loss); ``value`` is the loss.
    """

    def __init__(self, value: float, epoch: int, step: int | None) -> None:
        self.value = value
        self.epoch = epoch
        self.step = step
        if step is None:
            message = f"validation loss became {value} at epoch {epoch}"
        else:
            message = f"training loss became {value} at epoch {epoch} (step {step})"
        super().__init__(message)


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`train`: every epoch's metrics, and whether ``on_epoch``
    stopped it before ``config.epochs``."""

    history: list[EpochMetrics]
    stopped_early: bool
    epochs_run: int

    @property
    def final(self) -> EpochMetrics | None:
        """The last epoch's metrics, or ``None`` when no epoch ran."""
        return self.history[-1] if self.history else None


def decayed_lr(lr: float, decay: float, iteration: int) -> float:
    """The learning rate of the optimizer step with 0-based index ``iteration``."""
    return lr / (1.0 + decay * iteration)


def batch_bounds(n_samples: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` slices covering ``n_samples`` in batches of ``batch_size``.

    A trailing batch of a single sample is merged into the one before it: BatchNorm
    cannot normalise one sample in training mode and would raise mid-run.
    """
    bounds = [
        (start, min(start + batch_size, n_samples)) for start in range(0, n_samples, batch_size)
    ]
    if batch_size > 1 and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n_samples)]
    return bounds


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """A fresh optimizer over ``model``'s parameters as ``config`` describes, at ``config.lr``."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=False,
        )
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = _MIN_EVAL_BATCH
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)``, in eval mode.

    Leaves the model in eval mode; :func:`train` switches it back each epoch.
    """
    model.eval()
    loss_sum = torch.zeros((), device=x.device, dtype=torch.float64)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    for start in range(0, x.shape[0], batch_size):
        logits = model(x[start : start + batch_size])
        target = y[start : start + batch_size]
        loss_sum += F.cross_entropy(logits, target, reduction="sum").double()
        correct += (logits.argmax(dim=1) == target).sum()
    # One device->host transfer per evaluation rather than one per batch.
    n = x.shape[0]
    return loss_sum.item() / n, correct.item() / n


def _epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 64-bit seed for ``(seed, epoch)`` so epochs get unrelated streams."""
    state = np.random.SeedSequence([seed % 2**64, epoch]).generate_state(1, dtype=np.uint64)
    return int(state[0])


def _seed_device_rngs(device: torch.device, seed: int) -> None:
    """Seed the generators dropout draws from on ``device`` (and the CPU), nothing else:
    ``torch.manual_seed`` would also reseed every other GPU of the process."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def apply_config(optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
    """Give ``optimizer`` the weight decay and (SGD) momentum of ``config``.

    An optimizer restored from a checkpoint carries the hyperparameters it was saved
    with; a trial that continues another's checkpoint with changed ones (a PBT
    segment after explore) must train with its own. Its moment estimates are kept."""
    for group in optimizer.param_groups:
        group["weight_decay"] = config.weight_decay
        if isinstance(optimizer, torch.optim.SGD):
            group["momentum"] = config.momentum


def train(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    *,
    on_epoch: Callable[[EpochMetrics], bool | None] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    start_epoch: int = 1,
    optimizer: torch.optim.Optimizer | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset`` for epochs ``start_epoch..config.epochs``.

    After each epoch the validation split is evaluated and ``on_epoch(metrics)`` called;
    a truthy answer stops training (``stopped_early=True`` unless it was the last epoch).
    The model is moved to ``device`` and trained in place; it is left in eval mode.
    ``optimizer`` lets a resumed run pass one restored from a checkpoint (default: a
    fresh :func:`build_optimizer`); either way its learning rate is set by the decay
    schedule, which counts ``(start_epoch - 1) * steps_per_epoch`` steps already taken,
    and its weight decay and momentum are the config's (:func:`apply_config`).

    Raises :class:`NonFiniteLossError` as soon as a loss is NaN/inf, and ``ValueError``
    for ``start_epoch < 1``. Exceptions from ``on_epoch`` propagate.
    """
    require(start_epoch >= 1, "start_epoch", f"must be >= 1, got {start_epoch}")
    device = torch.device(device)
    model.to(device)
    x_train, y_train = dataset.x_train.to(device), dataset.y_train.to(device)
    x_val, y_val = dataset.x_val.to(device), dataset.y_val.to(device)
    n_train = x_train.shape[0]
    eval_batch = max(config.batch_size, _MIN_EVAL_BATCH)

    opt = optimizer if optimizer is not None else build_optimizer(model, config)
    bounds = batch_bounds(n_train, config.batch_size)
    iteration = (start_epoch - 1) * len(bounds)
    _set_lr(opt, decayed_lr(config.lr, config.decay, iteration))
    apply_config(opt, config)

    history: list[EpochMetrics] = []
    stopped_early = False
    fork_devices: list[int] = []
    if device.type == "cuda":
        fork_devices = [device.index if device.index is not None else torch.cuda.current_device()]
    # fork_rng restores the caller's RNG state afterwards: training seeds it per epoch.
    with torch.random.fork_rng(devices=fork_devices):
        for epoch in range(start_epoch, config.epochs + 1):
            started = time.perf_counter()
            epoch_seed = _epoch_seed(seed, epoch)
            _seed_device_rngs(device, epoch_seed)
            generator = torch.Generator().manual_seed(epoch_seed)
            order = torch.randperm(n_train, generator=generator).to(device)

            model.train()
            loss_sum = 0.0
            for start, stop in bounds:
                batch = order[start:stop]
                loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
                # .item() syncs with the device once per step; the price of stopping on
                # the first bad step instead of stepping on garbage for a whole epoch.
                value = loss.item()
                if not math.isfinite(value):
                    raise NonFiniteLossError(value, epoch, iteration + 1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                iteration += 1
                _set_lr(opt, decayed_lr(config.lr, config.decay, iteration))
                loss_sum += value * (stop - start)

            val_loss, val_accuracy = evaluate(model, x_val, y_val, batch_size=eval_batch)
            if not math.isfinite(val_loss):
                raise NonFiniteLossError(val_loss, epoch, None)
            metrics = EpochMetrics(
                epoch=epoch,
                train_loss=loss_sum / n_train,
                val_loss=val_loss,
                val_accuracy=val_accuracy,
                lr=float(opt.param_groups[0]["lr"]),
                seconds=time.perf_counter() - started,
            )
            history.append(metrics)
            if on_epoch is not None and on_epoch(metrics):
                # A stop request after the last epoch ends nothing early: the budget is spent.
                stopped_early = epoch < config.epochs
                break
    return TrainResult(history=history, stopped_early=stopped_early, epochs_run=len(history))
