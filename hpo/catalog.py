"""What the built-in training can run: model and data set names and the metrics it reports.

The server validates study specs against this catalog without importing ``models/`` (the
server never imports torch). ``tests/models`` checks that ``models/`` registers exactly
these names, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable

from search.status import Direction

__all__ = [
    "BUILTIN_DATASETS",
    "BUILTIN_METRICS",
    "BUILTIN_MODELS",
    "IMAGE_DATASETS",
    "IMAGE_MODELS",
    "MODEL_PARAM",
    "MODEL_PARAMS",
    "TRAINING_PARAMS",
    "known_params",
]

#: Model builders in ``models.registry.MODELS``.
BUILTIN_MODELS: tuple[str, ...] = ("mlp", "cnn")

#: The parameter that picks the architecture per trial (``models.registry.MODEL_PARAM``):
#: the study's ``train.model`` is the default, a searched categorical ``model`` whose
#: choices are in :data:`BUILTIN_MODELS` overrides it trial by trial.
MODEL_PARAM = "model"

#: Models that need image samples shaped (C, H, W); training fails on any other data set.
IMAGE_MODELS: frozenset[str] = frozenset({"cnn"})

#: Data sets in ``models.datasets.DATASETS`` (all bundled or generated: no downloads).
BUILTIN_DATASETS: tuple[str, ...] = ("digits", "synthetic")

#: Data sets whose samples are images (``Dataset.input_shape`` is (C, H, W)), i.e. the
#: ones an :data:`IMAGE_MODELS` model can train on. ``synthetic`` is flat: MLP only.
IMAGE_DATASETS: frozenset[str] = frozenset({"digits"})

#: Metrics the built-in training loop reports after every epoch, with their natural
#: direction (used to pick a default when a spec names only the metric).
BUILTIN_METRICS: dict[str, Direction] = {
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
    "cnn": frozenset(
        {
            "conv_blocks",
            "filters",
            "kernel_size",
            "pooling",
            "activation",
            "dropout",
            "batch_norm",
            "dense_units",
        }
    ),
}


def known_params(models: Iterable[str]) -> frozenset[str]:
    """Every parameter a study training any of ``models`` may search or fix:
    :data:`TRAINING_PARAMS`, :data:`MODEL_PARAM` and each model's :data:`MODEL_PARAMS`.

    Pass ``[train.model]``, plus the choices of a searched ``model`` parameter when there
    is one. Raises ``KeyError`` for a name not in :data:`BUILTIN_MODELS` (check names
    first; the spec reports an unknown model with its own field).
    """
    known = set(TRAINING_PARAMS) | {MODEL_PARAM}
    for model in models:
        known |= MODEL_PARAMS[model]
    return frozenset(known)
