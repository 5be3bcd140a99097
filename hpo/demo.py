"""The demo study: an MLP or a small CNN on scikit-learn's bundled digits, tuned over
learning rate, batch size, decay, weight decay, optimizer and architecture (the searched
``model`` parameter picks the family; each family's parameters are conditional on it).

``examples/digits-cnn-mlp.yaml`` is the same study as a file (a test keeps them in step).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

__all__ = ["DEMO_SPACE", "demo_spec"]

DEMO_SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 0.0001, "high": 0.1, "log": True},
    "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
    "decay": {"type": "float", "low": 1e-05, "high": 0.01, "log": True},
    "weight_decay": {"type": "float", "low": 1e-06, "high": 0.001, "log": True},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
    "model": {"type": "categorical", "choices": ["mlp", "cnn"]},
    "hidden_layers": {"type": "int", "low": 1, "high": 3, "when": {"model": "mlp"}},
    "units": {"type": "int", "low": 32, "high": 256, "log": True, "when": {"model": "mlp"}},
    "conv_blocks": {"type": "int", "low": 1, "high": 3, "when": {"model": "cnn"}},
    "filters": {"type": "int", "low": 8, "high": 64, "log": True, "when": {"model": "cnn"}},
    "kernel_size": {"type": "categorical", "choices": [3, 5], "when": {"model": "cnn"}},
    "pooling": {"type": "categorical", "choices": ["max", "avg"], "when": {"model": "cnn"}},
    "activation": {"type": "categorical", "choices": ["relu", "tanh", "gelu"]},
    "dropout": {"type": "float", "low": 0.0, "high": 0.4},
    "batch_norm": {"type": "categorical", "choices": [True, False]},
}


def demo_spec(
    *,
    trials: int = 30,
    strategy: str = "random",
    epochs: int = 15,
    parallel: int = 2,
    seed: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The demo study spec as a plain dict (what a user would write in YAML), a fresh
    copy each time: callers may change it."""
    return {
        "name": name or f"digits-demo-{datetime.now():%Y%m%d-%H%M%S}",
        "description": "Demo: an MLP or a CNN on scikit-learn's digits.",
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "space": copy.deepcopy(DEMO_SPACE),
        # Two values per numeric axis keep the demo's 15-parameter grid under the cap.
        "strategy": {
            "name": strategy,
            "seed": seed,
            "options": {"points": 2} if strategy == "grid" else {},
        },
        "budget": {"max_trials": trials, "max_parallel": parallel, "epochs": epochs},
        "train": {"model": "mlp", "dataset": "digits", "params": {"momentum": 0.9}},
    }
