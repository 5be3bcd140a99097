"""Choosing the architecture per trial: a ``model`` parameter overrides the study's model,
and a model that does not fit the data set is refused naming ``model``."""

from __future__ import annotations

from typing import Any

import pytest
from torch import nn

from models.datasets import load_dataset
from models.registry import (
    MODEL_PARAM,
    UnknownModelError,
    build_model,
    model_names,
    selected_model,
)


def is_cnn(model: nn.Module) -> bool:
    return any(isinstance(module, nn.Conv2d) for module in model.modules())


def test_the_studys_model_is_the_default() -> None:
    digits = load_dataset("digits")
    assert is_cnn(build_model("cnn", digits, {}))
    assert not is_cnn(build_model("mlp", digits, {}))
    assert selected_model("cnn", {"lr": 0.1}) == "cnn"


@pytest.mark.parametrize(
    ("name", "params", "expect_cnn"),
    [
        ("mlp", {"model": "cnn"}, True),
        ("cnn", {"model": "mlp"}, False),
        ("mlp", {"model": "mlp"}, False),
        ("mlp", {"model": " CNN "}, True),  # a harmless spelling, as for other choices
    ],
)
def test_a_model_parameter_overrides_the_name(
    name: str, params: dict[str, Any], expect_cnn: bool
) -> None:
    assert MODEL_PARAM == "model"
    model = build_model(name, load_dataset("digits"), {**params, "filters": 4, "units": 8})
    assert is_cnn(model) is expect_cnn
    assert model(load_dataset("digits").x_val[:3]).shape == (3, 10)


def test_each_branch_reads_its_own_parameters() -> None:
    # A trial dict may hold parameters of the other branch (when a space has no
    # conditions); each builder reads only its own.
    params = {"model": "cnn", "filters": 4, "units": 999, "hidden_layers": 7}
    model = build_model("mlp", load_dataset("digits"), params)
    assert [c.out_channels for c in model.modules() if isinstance(c, nn.Conv2d)] == [4, 8]


@pytest.mark.parametrize("value", ["resnet", "", 3, None, True])
def test_bad_model_parameter_names_the_parameter(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^model: unknown ") as info:
        build_model("mlp", load_dataset("digits"), {"model": value})
    assert str(info.value).endswith("known: " + ", ".join(model_names()))


@pytest.mark.parametrize(
    ("name", "params"), [("cnn", {}), ("mlp", {"model": "cnn"}), ("cnn", {"model": "cnn"})]
)
def test_cnn_on_flat_data_names_the_model(name: str, params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"^model: 'cnn' needs image samples") as info:
        build_model(name, load_dataset("synthetic"), params)
    assert "'synthetic'" in str(info.value) and "(20,)" in str(info.value)


def test_mlp_still_fits_flat_data_when_chosen_by_parameter() -> None:
    ds = load_dataset("synthetic")
    model = build_model("cnn", ds, {"model": "mlp", "hidden_layers": 1, "units": 8})
    assert model(ds.x_val).shape == (ds.n_val, ds.n_classes)


def test_an_unknown_study_model_is_still_an_unknown_model_error() -> None:
    with pytest.raises(UnknownModelError):
        build_model("resnet9000", load_dataset("digits"), {"lr": 0.1})
