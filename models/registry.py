"""Model registry: the names a study's ``train.model`` may use, and how each is built.

A builder takes the :class:`~models.datasets.Dataset` (for input size, class count and
per-sample shape) and the trial's parameter dict, and returns a freshly initialised
``nn.Module`` producing logits. New architectures join with :func:`register_model`; the
names here must match ``hpo.catalog.BUILTIN_MODELS`` (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from models._params import UnknownNameError
from models.datasets import Dataset
from models.mlp import build_mlp

__all__ = [
    "MODELS",
    "ModelBuilder",
    "UnknownModelError",
    "build_model",
    "model_names",
    "register_model",
]

ModelBuilder = Callable[[Dataset, Mapping[str, Any]], nn.Module]

#: Model name -> builder.
MODELS: dict[str, ModelBuilder] = {}


class UnknownModelError(UnknownNameError):
    """Raised by :func:`build_model` for a name no builder is registered under."""

    def __init__(self, name: object) -> None:
        super().__init__("model", name, MODELS)


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: register ``builder`` under ``name``; registering a name twice is an error."""

    def decorate(builder: ModelBuilder) -> ModelBuilder:
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        MODELS[name] = builder
        return builder

    return decorate


def model_names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(MODELS)


def build_model(name: str, dataset: Dataset, params: Mapping[str, Any]) -> nn.Module:
    """Build model ``name`` for ``dataset`` with the trial's ``params``.

    Raises :class:`UnknownModelError` (a ``KeyError``) for an unknown name and the
    builder's ``ValueError`` (naming the parameter) for a bad parameter value.
    """
    builder = MODELS.get(name)
    if builder is None:
        raise UnknownModelError(name)
    return builder(dataset, params)


@register_model("mlp")
def _mlp(dataset: Dataset, params: Mapping[str, Any]) -> nn.Module:
    return build_mlp(dataset.n_features, dataset.n_classes, params)
