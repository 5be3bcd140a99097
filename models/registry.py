"""Model registry: the names a study's ``train.model`` may use, and how each is built.

A builder takes the :class:`~models.datasets.Dataset` (for input size, class count and
per-sample shape) and the trial's parameter dict, and returns a freshly initialised
``nn.Module`` producing logits. New architectures join with :func:`register_model`; the
names here must match ``hpo.catalog.BUILTIN_MODELS`` (a test checks it).

Choosing the architecture per trial: the study's ``train.model`` is the default, and a
``model`` key in the trial's parameters (:data:`MODEL_PARAM`, usually a searched
categorical such as ``{type: categorical, choices: [mlp, cnn]}``) overrides it, so one
study can compare architectures. :func:`build_model` applies that rule, so callers just
pass the study's model name and the trial's parameters.

The shape of every registry of the project (``search.registry`` describes it): a table
(:data:`MODELS`), :func:`model_names`, :func:`get_model` (the entry, or an error naming
the field) and the function that builds from it (:func:`build_model`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from models._params import UnknownNameError, as_choice
from models.cnn import build_cnn
from models.datasets import Dataset
from models.mlp import build_mlp

__all__ = [
    "MODELS",
    "MODEL_PARAM",
    "ModelBuilder",
    "UnknownModelError",
    "build_model",
    "get_model",
    "model_names",
    "register_model",
    "selected_model",
]

ModelBuilder = Callable[[Dataset, Mapping[str, Any]], nn.Module]

#: Model name -> builder.
MODELS: dict[str, ModelBuilder] = {}

#: The trial parameter that picks the architecture, overriding the study's ``train.model``
#: (equal to ``hpo.catalog.MODEL_PARAM``; a test checks it).
MODEL_PARAM = "model"


class UnknownModelError(UnknownNameError):
    """Raised by :func:`build_model` for a name no builder is registered under."""

    def __init__(self, name: object) -> None:
        super().__init__("model", name, MODELS, field="train.model")


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


def get_model(name: str) -> ModelBuilder:
    """The builder registered as ``name``; :class:`UnknownModelError` if there is none."""
    builder = MODELS.get(name) if isinstance(name, str) else None
    if builder is None:
        raise UnknownModelError(name)
    return builder


def selected_model(name: str, params: Mapping[str, Any]) -> str:
    """The model a trial trains: ``params["model"]`` when present, else ``name``.

    A ``model`` parameter that names no registered model raises ``ValueError`` starting
    ``"model: "`` (it is a bad parameter value, reported like any other); ``name`` itself
    is not checked here.
    """
    if MODEL_PARAM not in params:
        return name
    return as_choice(MODEL_PARAM, params[MODEL_PARAM], MODELS)


def build_model(name: str, dataset: Dataset, params: Mapping[str, Any]) -> nn.Module:
    """Build the trial's model for ``dataset`` with the trial's ``params``.

    ``name`` is the study's ``train.model``; a ``model`` key in ``params`` overrides it
    (see :func:`selected_model`). Raises :class:`UnknownModelError` (a ``KeyError``) for
    an unknown ``name`` and ``ValueError`` naming the parameter for a bad parameter value,
    including ``model`` when the chosen architecture does not fit the data set (a CNN on
    flat features).
    """
    return get_model(selected_model(name, params))(dataset, params)


@register_model("mlp")
def _mlp(dataset: Dataset, params: Mapping[str, Any]) -> nn.Module:
    """The MLP for any data set: image samples are flattened."""
    return build_mlp(dataset.n_features, dataset.n_classes, params)


@register_model("cnn")
def _cnn(dataset: Dataset, params: Mapping[str, Any]) -> nn.Module:
    """The CNN for an image data set (``input_shape`` ``(C, H, W)``); a flat data set
    raises ``ValueError`` naming ``model``, since the choice of model is what is wrong."""
    if len(dataset.input_shape) != 3:
        raise ValueError(
            f"{MODEL_PARAM}: 'cnn' needs image samples shaped (C, H, W), but data set "
            f"{dataset.name!r} has input_shape {dataset.input_shape}; use 'mlp'"
        )
    return build_cnn(dataset.input_shape, dataset.n_classes, params)
