"""What the built-in training can run: model and data set names and the metrics it reports.

The server validates study specs against this catalog without importing ``models/`` (the
server never imports torch). ``tests/models`` checks that ``models/`` registers exactly
these names, so the two cannot drift apart.
"""

from __future__ import annotations

__all__ = ["BUILTIN_DATASETS", "BUILTIN_METRICS", "BUILTIN_MODELS"]

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
