"""The torch room: data sets, model builders and the training loop a worker runs per trial.

Imports only torch, numpy, scikit-learn and the standard library; never ``server``,
``worker``, ``search`` or ``hpo`` (see DESIGN.md).
"""

from __future__ import annotations

from models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from models.cnn import POOLINGS, build_cnn
from models.datasets import (
    DATASETS,
    Dataset,
    UnknownDatasetError,
    clear_dataset_cache,
    dataset_names,
    get_dataset,
    load_dataset,
    register_dataset,
)
from models.device import seed_everything, select_device, visible_devices
from models.mlp import ACTIVATIONS, build_mlp
from models.registry import (
    MODEL_PARAM,
    MODELS,
    UnknownModelError,
    build_model,
    get_model,
    model_names,
    register_model,
    selected_model,
)
from models.training import (
    OPTIMIZERS,
    EpochMetrics,
    NonFiniteLossError,
    TrainConfig,
    TrainResult,
    batch_bounds,
    build_optimizer,
    decayed_lr,
    evaluate,
    train,
)

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "MODELS",
    "MODEL_PARAM",
    "OPTIMIZERS",
    "POOLINGS",
    "Checkpoint",
    "Dataset",
    "EpochMetrics",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "UnknownDatasetError",
    "UnknownModelError",
    "batch_bounds",
    "build_cnn",
    "build_mlp",
    "build_model",
    "build_optimizer",
    "clear_dataset_cache",
    "dataset_names",
    "decayed_lr",
    "evaluate",
    "get_dataset",
    "get_model",
    "load_checkpoint",
    "load_dataset",
    "model_names",
    "register_dataset",
    "register_model",
    "save_checkpoint",
    "seed_everything",
    "select_device",
    "selected_model",
    "train",
    "visible_devices",
]
