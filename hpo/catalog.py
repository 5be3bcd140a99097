"""What the built-in training can run: model and data set names and the metrics it reports.

The server validates study specs against this catalog without importing ``models/`` (the
server never imports torch). ``tests/models`` checks that ``models/`` registers exactly
these names, so the two cannot drift apart.
"""

from __future__ import annotations

__all__ = [
    "BUILTIN_DATASETS",
    "BUILTIN_METRICS",
    "BUILTIN_MODELS",
    "MODEL_PARAMS",
    "TRAINING_PARAMS",
]

#: Model builders in ``models.registry.MODELS``.
BUILTIN_MODELS: tuple[str, ...] = ("mlp",)

#: Data sets in ``models.datasets.DATASETS`` (all bundled or generated: no downloads).
BUILTIN_DATASETS: tuple[str, ...] = ("digits", "synthetic")

#: Metrics the built-in training loop reports after every epoch, with their natural
#: direction (used to pick a default when a spec names only the metric).
BUILTIN_METRICS: dict[str, str] = {
    "val_accuracy": "maximize",
    "val_loss": "minimize",
    "train_loss": "minimize",
}

#: Parameters the training loop reads (``models.training.TrainConfig``; epochs come from
#: the budget, not from parameters).
TRAINING_PARAMS: frozenset[str] = frozenset(
    {"lr", "batch_size", "decay", "optimizer", "momentum", "weight_decay"}
)

#: Parameters each built-in model's builder reads. A searched or fixed parameter that is
#: in neither set would be silently ignored by training, so the spec rejects it.
MODEL_PARAMS: dict[str, frozenset[str]] = {
    "mlp": frozenset({"hidden_layers", "units", "activation", "dropout", "batch_norm"}),
}
