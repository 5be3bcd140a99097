"""build_cnn: architecture from parameters, any depth on 8x8 images, validation of those
parameters, and learning the digits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from models.cnn import CNN_DEFAULTS, KERNEL_SIZES, POOLINGS, build_cnn
from models.datasets import load_dataset
from models.device import seed_everything
from models.mlp import ACTIVATIONS
from models.registry import build_model
from models.training import TrainConfig, train

DIGITS = (1, 8, 8)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread, as in the training tests: tiny models on a busy 2-core machine
    run far slower when OpenMP threads spin-wait on each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def layers(model: nn.Module, kind: type[nn.Module]) -> list[nn.Module]:
    return [module for module in model.modules() if isinstance(module, kind)]


def forward(model: nn.Module, shape: tuple[int, ...] = DIGITS, n: int = 4) -> torch.Tensor:
    """Logits for ``n`` random flat samples, in eval mode (BatchNorm without batch stats)."""
    model.eval()
    with torch.no_grad():
        return model(torch.rand(n, int(torch.tensor(shape).prod())))


def test_defaults_on_digits() -> None:
    assert CNN_DEFAULTS["conv_blocks"] == 2 and CNN_DEFAULTS["filters"] == 32
    model = build_cnn(DIGITS, 10, {})
    convs = layers(model, nn.Conv2d)
    # Two blocks; channels double after the first block's pool.
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 32, (3, 3), (1, 1)),
        (32, 64, (3, 3), (1, 1)),
    ]
    assert len(layers(model, nn.MaxPool2d)) == 2  # 8x8 -> 4x4 -> 2x2
    linears = layers(model, nn.Linear)
    assert [(m.in_features, m.out_features) for m in linears] == [(64 * 2 * 2, 64), (64, 10)]
    assert len(layers(model, nn.ReLU)) == 3  # two blocks and the hidden dense layer
    assert layers(model, nn.BatchNorm2d) == [] and layers(model, nn.Dropout) == []
    out = forward(model)
    assert out.shape == (4, 10) and torch.isfinite(out).all()


def test_flat_and_image_shaped_batches_give_the_same_logits() -> None:
    model = build_cnn(DIGITS, 10, {}).eval()
    images = torch.rand(3, *DIGITS)
    with torch.no_grad():
        assert torch.equal(model(images), model(images.flatten(1)))
    with pytest.raises(RuntimeError):
        model(torch.rand(3, 63))  # a batch of the wrong size fails loudly


@pytest.mark.parametrize(
    ("pooling", "kind"), [("max", nn.MaxPool2d), ("avg", nn.AvgPool2d), ("none", None)]
)
def test_each_pooling(pooling: str, kind: type[nn.Module] | None) -> None:
    assert set(POOLINGS) == {"max", "avg", "none"}
    model = build_cnn(DIGITS, 10, {"pooling": pooling, "filters": 4, "dense_units": 16})
    pools = layers(model, nn.MaxPool2d) + layers(model, nn.AvgPool2d)
    head = layers(model, nn.Linear)[0]
    if kind is None:
        assert pools == []
        # No pooling: the map stays 8x8 and the width stays `filters`.
        assert [c.out_channels for c in layers(model, nn.Conv2d)] == [4, 4]
        assert head.in_features == 4 * 8 * 8
    else:
        assert len(pools) == 2 and all(isinstance(p, kind) for p in pools)
        assert head.in_features == 8 * 2 * 2
    assert forward(model).shape == (4, 10)


@pytest.mark.parametrize("pooling", sorted(POOLINGS))
@pytest.mark.parametrize("conv_blocks", [1, 2, 3, 4, 6, 10])
def test_any_depth_fits_an_8x8_image(pooling: str, conv_blocks: int) -> None:
    params = {"conv_blocks": conv_blocks, "pooling": pooling, "filters": 4, "batch_norm": True}
    model = build_cnn(DIGITS, 10, params)
    convs = layers(model, nn.Conv2d)
    assert len(convs) == conv_blocks
    pools = layers(model, nn.MaxPool2d) + layers(model, nn.AvgPool2d)
    expected_pools = 0 if pooling == "none" else min(conv_blocks, 3)  # 8 -> 4 -> 2 -> 1
    assert len(pools) == expected_pools
    # Width doubles per pool only, so it is bounded however deep the network is.
    assert max(c.out_channels for c in convs) <= 4 * 2**3
    model.train()
    out = model(torch.rand(5, 64))  # training mode too: BatchNorm on a 1x1 map
    assert out.shape == (5, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("kernel_size", KERNEL_SIZES)
def test_each_kernel_size_keeps_the_map_size(kernel_size: int) -> None:
    model = build_cnn(DIGITS, 10, {"kernel_size": kernel_size, "pooling": "none", "filters": 3})
    conv = layers(model, nn.Conv2d)[0]
    assert conv.kernel_size == (kernel_size, kernel_size)
    assert layers(model, nn.Linear)[0].in_features == 3 * 8 * 8  # 'same' padding
    assert forward(model).shape == (4, 10)


def test_kernels_are_trimmed_to_the_map() -> None:
    # 8x8 -> 4x4 -> 2x2 -> 1x1 -> 1x1: taps beyond 2 * side - 1 would only see padding.
    model = build_cnn(DIGITS, 10, {"conv_blocks": 5, "kernel_size": 7, "filters": 2})
    assert [c.kernel_size for c in layers(model, nn.Conv2d)] == [
        (7, 7),
        (7, 7),
        (3, 3),
        (1, 1),
        (1, 1),
    ]
    assert [c.padding for c in layers(model, nn.Conv2d)][2:] == [(1, 1), (0, 0), (0, 0)]
    wide = build_cnn((1, 2, 9), 3, {"conv_blocks": 1, "kernel_size": 5})
    assert layers(wide, nn.Conv2d)[0].kernel_size == (3, 5)


def test_trimming_drops_only_taps_that_see_padding() -> None:
    # A 5x5 "same" convolution on a 2x2 map equals the 3x3 one holding its centre taps.
    torch.manual_seed(0)
    full = nn.Conv2d(2, 3, 5, padding=2)
    trimmed = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        trimmed.weight.copy_(full.weight[:, :, 1:4, 1:4])
        trimmed.bias.copy_(full.bias)
    x = torch.rand(4, 2, 2, 2)
    assert torch.allclose(full(x), trimmed(x), atol=1e-6)


def test_batch_norm_dropout_and_dense_units() -> None:
    params = {"conv_blocks": 3, "batch_norm": True, "dropout": 0.25, "dense_units": 20}
    model = build_cnn(DIGITS, 10, params)
    assert len(layers(model, nn.BatchNorm2d)) == 3
    assert len(layers(model, nn.BatchNorm1d)) == 1
    # The norm's shift makes a convolution bias redundant.
    assert all(c.bias is None for c in layers(model, nn.Conv2d))
    dropouts = layers(model, nn.Dropout)
    assert len(dropouts) == 1 and dropouts[0].p == 0.25
    hidden, head = layers(model, nn.Linear)
    assert hidden.out_features == 20 and head.in_features == 20
    assert all(c.bias is not None for c in layers(build_cnn(DIGITS, 10, {}), nn.Conv2d))


def test_block_and_head_order() -> None:
    model = build_cnn(DIGITS, 3, {"conv_blocks": 1, "batch_norm": True, "dropout": 0.5})
    kinds = [type(m).__name__ for m in model.children()]
    assert kinds == [
        "_ToImage",
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Flatten",
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Dropout",
        "Linear",
    ]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation(activation: str) -> None:
    model = build_cnn(DIGITS, 10, {"activation": activation, "filters": 4, "dense_units": 8})
    assert len(layers(model, type(ACTIVATIONS[activation]()))) == 3
    assert torch.isfinite(forward(model)).all()


@pytest.mark.parametrize("shape", [(3, 5, 9), (2, 1, 1), (1, 16, 2), (4, 28, 28)])
def test_other_image_shapes(shape: tuple[int, int, int]) -> None:
    model = build_cnn(shape, 4, {"conv_blocks": 5, "filters": 2})
    assert layers(model, nn.Conv2d)[0].in_channels == shape[0]
    assert forward(model, shape, n=2).shape == (2, 4)


def test_harmless_spellings_are_accepted() -> None:
    params = {
        "conv_blocks": 1.0,
        "filters": 8.0,
        "kernel_size": 5.0,
        "pooling": " AVG ",
        "batch_norm": "true",
        "dense_units": 16.0,
    }
    model = build_cnn(DIGITS, 10, params)
    conv = layers(model, nn.Conv2d)[0]
    assert (conv.out_channels, conv.kernel_size) == (8, (5, 5))
    assert len(layers(model, nn.AvgPool2d)) == 1 and len(layers(model, nn.BatchNorm2d)) == 1


def test_unrelated_params_are_ignored() -> None:
    params = {"lr": 0.1, "units": 7, "hidden_layers": 9, "model": "cnn", "optimizer": "sgd"}
    model = build_cnn(DIGITS, 10, params)
    assert len(layers(model, nn.Conv2d)) == 2


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"conv_blocks": 0}, "conv_blocks"),
        ({"conv_blocks": 1.5}, "conv_blocks"),
        ({"conv_blocks": True}, "conv_blocks"),
        ({"filters": 0}, "filters"),
        ({"filters": "many"}, "filters"),
        ({"kernel_size": 2}, "kernel_size"),
        ({"kernel_size": 9}, "kernel_size"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": -3}, "kernel_size"),
        ({"kernel_size": "3"}, "kernel_size"),
        ({"pooling": "min"}, "pooling"),
        ({"pooling": None}, "pooling"),
        ({"activation": "foo"}, "activation"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": float("nan")}, "dropout"),
        ({"batch_norm": "maybe"}, "batch_norm"),
        ({"dense_units": 0}, "dense_units"),
        ({"dense_units": 2.5}, "dense_units"),
    ],
)
def test_bad_params_name_the_parameter(params: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}: "):
        build_cnn(DIGITS, 10, params)


def test_unknown_pooling_lists_known_ones() -> None:
    with pytest.raises(ValueError, match=r"^pooling: unknown 'min'; known: avg, max, none$"):
        build_cnn(DIGITS, 10, {"pooling": "min"})


@pytest.mark.parametrize("shape", [(64,), (8, 8), (1, 8, 8, 1), (0, 8, 8), (1, 0, 8), ()])
def test_non_image_input_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"^input_shape: a CNN needs images shaped \(C, H, W\)"):
        build_cnn(shape, 10, {})


def test_too_few_classes() -> None:
    with pytest.raises(ValueError, match=r"^n_classes: "):
        build_cnn(DIGITS, 1, {})


def test_cnn_learns_digits() -> None:
    ds = load_dataset("digits")
    seed_everything(0)
    model = build_model("cnn", ds, {"filters": 16})
    result = train(model, ds, TrainConfig(lr=3e-3, batch_size=64, epochs=5), seed=0)
    assert result.epochs_run == 5 and result.final is not None
    assert result.final.val_accuracy > 0.8  # chance is 0.1
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_cnn_training_is_reproducible() -> None:
    ds = load_dataset("digits")
    params = {"filters": 4, "conv_blocks": 1, "dropout": 0.3, "batch_norm": True}
    runs = []
    for _ in range(2):
        seed_everything(5)
        model = build_model("cnn", ds, params)
        history = train(model, ds, TrainConfig(epochs=1, batch_size=128), seed=5).history
        runs.append([(m.train_loss, m.val_loss, m.val_accuracy) for m in history])
    assert runs[0] == runs[1]
