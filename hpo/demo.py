"""The demo study: an MLP on scikit-learn's bundled digits, tuned over learning rate,
batch size, decay, optimizer and architecture.

``examples/digits-mlp.yaml`` is the same study as a file (a test keeps them in step).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["DEMO_SPACE", "demo_spec"]

DEMO_SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
    "decay": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
    "hidden_layers": {"type": "int", "low": 1, "high": 3},
    "units": {"type": "categorical", "choices": [32, 64, 128, 256]},
    "activation": {"type": "categorical", "choices": ["relu", "tanh", "gelu"]},
    "dropout": {"type": "float", "low": 0.0, "high": 0.4},
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
    """The demo study spec as a plain dict (what a user would write in YAML)."""
    return {
        "name": name or f"digits-demo-{datetime.now():%Y%m%d-%H%M%S}",
        "description": "Demo: an MLP on scikit-learn's digits.",
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "space": DEMO_SPACE,
        "strategy": {"name": strategy, "seed": seed, "options": {}},
        "budget": {"max_trials": trials, "max_parallel": parallel, "epochs": epochs},
        "train": {"model": "mlp", "dataset": "digits", "params": {"momentum": 0.9}},
    }
