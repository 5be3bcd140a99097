"""build_mlp: architecture from parameters, validation of those parameters, and the registry."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from models.datasets import load_dataset
from models.mlp import ACTIVATIONS, build_mlp
from models.registry import MODELS, UnknownModelError, build_model, model_names


def count(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(module, kind) for module in model.modules())


@pytest.mark.parametrize("hidden_layers", [0, 1, 2, 3])
def test_layer_counts(hidden_layers: int) -> None:
    model = build_mlp(64, 10, {"hidden_layers": hidden_layers, "units": 32})
    assert count(model, nn.Linear) == hidden_layers + 1
    assert count(model, nn.ReLU) == hidden_layers
    assert count(model, nn.BatchNorm1d) == 0
    assert count(model, nn.Dropout) == 0
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears[0].in_features == 64
    assert linears[-1].out_features == 10
    assert all(m.out_features == 32 for m in linears[:-1])


def test_defaults() -> None:
    model = build_mlp(20, 3, {})
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(20, 128), (128, 128), (128, 3)]


@pytest.mark.parametrize("hidden_layers", [0, 1, 3])
def test_batch_norm_and_dropout_per_hidden_block(hidden_layers: int) -> None:
    params = {"hidden_layers": hidden_layers, "batch_norm": True, "dropout": 0.25}
    model = build_mlp(64, 10, params)
    assert count(model, nn.BatchNorm1d) == hidden_layers
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == hidden_layers
    assert all(m.p == 0.25 for m in dropouts)


def test_block_order() -> None:
    model = build_mlp(8, 2, {"hidden_layers": 1, "batch_norm": True, "dropout": 0.5})
    kinds = [type(m) for m in model.children()]
    assert kinds == [nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout, nn.Linear]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_builds_and_forwards(activation: str) -> None:
    assert set(ACTIVATIONS) == {"relu", "tanh", "gelu", "elu", "leaky_relu", "silu", "sigmoid"}
    model = build_mlp(64, 10, {"activation": activation, "units": 16, "batch_norm": True})
    assert count(model, type(ACTIVATIONS[activation]())) == 2
    out = model(torch.rand(5, 64))
    assert out.shape == (5, 10)
    assert torch.isfinite(out).all()


def test_image_shaped_input_is_flattened() -> None:
    model = build_mlp(64, 10, {"hidden_layers": 1})
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)


def test_harmless_spellings_are_accepted() -> None:
    # Values that went through JSON and a strategy: 32.0 for 32, "true" for True, ...
    params = {"hidden_layers": 1.0, "units": 32.0, "activation": " Tanh ", "batch_norm": "true"}
    model = build_mlp(64, 10, params)
    assert count(model, nn.Tanh) == 1 and count(model, nn.BatchNorm1d) == 1
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [32, 10]


def test_unrelated_params_are_ignored() -> None:
    model = build_mlp(64, 10, {"lr": 0.1, "batch_size": 32, "optimizer": "sgd"})
    assert count(model, nn.Linear) == 3


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"hidden_layers": -1}, "hidden_layers"),
        ({"hidden_layers": 1.5}, "hidden_layers"),
        ({"hidden_layers": "two"}, "hidden_layers"),
        ({"hidden_layers": True}, "hidden_layers"),
        ({"units": 0}, "units"),
        ({"units": None}, "units"),
        ({"activation": "foo"}, "activation"),
        ({"activation": 3}, "activation"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": float("nan")}, "dropout"),
        ({"batch_norm": "maybe"}, "batch_norm"),
        ({"batch_norm": 2}, "batch_norm"),
    ],
)
def test_bad_params_name_the_parameter(params: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}: "):
        build_mlp(64, 10, params)


def test_unknown_activation_lists_known_ones() -> None:
    with pytest.raises(ValueError) as info:
        build_mlp(64, 10, {"activation": "foo"})
    assert str(info.value).startswith("activation: unknown 'foo'; known: elu, gelu")


def test_registry_builds_mlp_for_a_dataset() -> None:
    assert "mlp" in MODELS
    assert model_names() == sorted(MODELS)
    ds = load_dataset("synthetic")
    model = build_model("mlp", ds, {"hidden_layers": 1, "units": 8})
    assert model(ds.x_val).shape == (ds.n_val, ds.n_classes)


def test_unknown_model() -> None:
    with pytest.raises(UnknownModelError) as info:
        build_model("resnet9000", load_dataset("synthetic"), {})
    assert isinstance(info.value, KeyError)
    assert str(info.value) == "unknown model 'resnet9000'; known: " + ", ".join(model_names())
