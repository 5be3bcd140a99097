"""The models/ room keeps its contracts with the rest of the project.

- It registers exactly the names ``hpo.catalog`` advertises, its builders and training
  read exactly the parameters the catalog lists, and the catalog knows which models need
  images and which data sets have them (the server validates specs against the catalog
  without importing torch, so the two must not drift).

What it may import (torch, numpy, scikit-learn; never server, worker, search or hpo) is
pyproject.toml's import contracts (``make lint``; tests/contracts/).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

import models
from hpo.catalog import (
    BUILTIN_DATASETS,
    BUILTIN_MODELS,
    IMAGE_DATASETS,
    IMAGE_MODELS,
    MODEL_PARAM,
    MODEL_PARAMS,
    TRAINING_PARAMS,
    known_params,
)
from models import TrainConfig, build_model, dataset_names, load_dataset, model_names


class RecordingParams(Mapping[str, Any]):
    """An empty parameter dict that records every key a reader looks up or tests for."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        self.seen.add(str(key))
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_registries_match_the_catalog() -> None:
    assert model_names() == sorted(BUILTIN_MODELS)
    assert dataset_names() == sorted(BUILTIN_DATASETS)
    assert sorted(MODEL_PARAMS) == sorted(BUILTIN_MODELS)
    assert MODEL_PARAM == models.MODEL_PARAM


@pytest.mark.parametrize("name", BUILTIN_MODELS)
def test_each_builder_reads_exactly_the_catalogued_parameters(name: str) -> None:
    params = RecordingParams()
    build_model(name, load_dataset("digits"), params)
    assert params.seen == MODEL_PARAMS[name] | {MODEL_PARAM}


def test_training_reads_exactly_the_catalogued_parameters() -> None:
    params = RecordingParams()
    TrainConfig.from_params(params, epochs=1)
    assert params.seen == TRAINING_PARAMS


def test_image_models_and_datasets_match_the_catalog() -> None:
    images = {name for name in dataset_names() if len(load_dataset(name).input_shape) == 3}
    assert images == IMAGE_DATASETS
    for model in BUILTIN_MODELS:
        for dataset in BUILTIN_DATASETS:
            fits = model not in IMAGE_MODELS or dataset in IMAGE_DATASETS
            if fits:
                build_model(model, load_dataset(dataset), {})
            else:
                with pytest.raises(ValueError, match=f"^{MODEL_PARAM}: "):
                    build_model(model, load_dataset(dataset), {})


def test_known_params() -> None:
    base = TRAINING_PARAMS | {MODEL_PARAM}
    assert known_params([]) == base
    assert known_params(["mlp"]) == base | MODEL_PARAMS["mlp"]
    both = known_params(["mlp", "cnn"])
    assert both == base | MODEL_PARAMS["mlp"] | MODEL_PARAMS["cnn"]
    assert {"units", "filters", "activation", "lr", "model"} <= both
    assert "filters" not in known_params(iter(["mlp"]))
    with pytest.raises(KeyError):
        known_params(["resnet"])


def test_public_names_are_exported() -> None:
    for name in models.__all__:
        assert hasattr(models, name), name
