"""The multilayer perceptron: a stack of equally wide hidden blocks and a linear head.

Architecture parameters come from a trial's parameter dict, so every one has a default and
is validated here: a bad value raises ``ValueError`` whose message starts with the
parameter's name, before any layer is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from models._params import ParamReader, require

__all__ = ["ACTIVATIONS", "MLP_DEFAULTS", "build_mlp"]

#: Activation name -> module factory (a fresh module per layer keeps the graph simple to
#: inspect and lets stateful activations work if one is ever added).
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
}

#: The values used for parameters a trial does not set.
MLP_DEFAULTS: dict[str, Any] = {
    "hidden_layers": 2,
    "units": 128,
    "activation": "relu",
    "dropout": 0.0,
    "batch_norm": False,
}


def build_mlp(n_features: int, n_classes: int, params: Mapping[str, Any]) -> nn.Module:
    """Build an MLP mapping ``(N, n_features)`` (or any shape flattening to it) to logits.

    Reads from ``params`` (other keys are ignored, so a whole trial dict can be passed):
    ``hidden_layers`` int >= 0, ``units`` int >= 1 (width of every hidden layer),
    ``activation`` one of :data:`ACTIVATIONS`, ``dropout`` float in [0, 1),
    ``batch_norm`` bool. Each hidden block is Linear -> BatchNorm1d (if ``batch_norm``) ->
    activation -> Dropout (if ``dropout`` > 0); the head is a Linear to ``n_classes``
    logits (no softmax: training uses cross-entropy on logits). ``hidden_layers=0`` gives
    multinomial logistic regression.
    """
    require(n_features >= 1, "n_features", f"must be >= 1, got {n_features}")
    require(n_classes >= 2, "n_classes", f"must be >= 2, got {n_classes}")

    read = ParamReader(params, MLP_DEFAULTS)
    hidden_layers = read.int_at_least("hidden_layers", 0)
    units = read.int_at_least("units", 1)
    activation = read.choice("activation", ACTIVATIONS)
    dropout = read.fraction("dropout")
    batch_norm = read.flag("batch_norm")

    # Flatten first so image-shaped batches work too; on flat input it is a no-op.
    layers: list[nn.Module] = [nn.Flatten()]
    width = n_features
    for _ in range(hidden_layers):
        layers.append(nn.Linear(width, units))
        if batch_norm:
            layers.append(nn.BatchNorm1d(units))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0.0:
            layers.append(nn.Dropout(dropout))
        width = units
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)
