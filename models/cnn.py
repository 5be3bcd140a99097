"""A small convolutional network for image data sets such as the bundled 8x8 digits.

Data sets keep samples flat, ``(N, C*H*W)``, so the network starts by reshaping each batch
to ``(N, C, H, W)`` with the data set's ``input_shape``. As in :mod:`models.mlp`, every
architecture parameter has a default and is validated before any layer is built: a bad
value raises ``ValueError`` whose message starts with the parameter's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from models._params import ParamReader, as_int, require
from models.mlp import ACTIVATIONS

__all__ = ["CNN_DEFAULTS", "KERNEL_SIZES", "POOLINGS", "build_cnn"]

#: Pooling name -> 2x2, stride-2 pooling module factory (``"none"`` keeps the map size).
POOLINGS: dict[str, type[nn.Module] | None] = {
    "max": nn.MaxPool2d,
    "avg": nn.AvgPool2d,
    "none": None,
}

#: Kernel sizes accepted: odd, so ``padding = k // 2`` keeps the map size ("same"), and
#: at most 7, beyond which an 8x8 image is mostly padding.
KERNEL_SIZES: tuple[int, ...] = (1, 3, 5, 7)

#: The values used for parameters a trial does not set.
CNN_DEFAULTS: dict[str, Any] = {
    "conv_blocks": 2,
    "filters": 32,
    "kernel_size": 3,
    "pooling": "max",
    "activation": "relu",
    "dropout": 0.0,
    "batch_norm": False,
    "dense_units": 64,
}


class _ToImage(nn.Module):
    """Reshape a batch to ``(N, *shape)``; flat ``(N, C*H*W)`` and image-shaped
    ``(N, C, H, W)`` batches both pass, anything holding another size fails loudly."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def _image_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``input_shape`` as ``(C, H, W)`` with every side >= 1, else ``ValueError``."""
    shape = tuple(input_shape)
    message = f"a CNN needs images shaped (C, H, W) with every side >= 1, got {shape}"
    require(len(shape) == 3, "input_shape", message)
    channels, height, width = (as_int("input_shape", side) for side in shape)
    require(min(channels, height, width) >= 1, "input_shape", message)
    return channels, height, width


def _useful_kernel(kernel_size: int, side: int) -> int:
    """``kernel_size`` trimmed to the taps that can touch a map of ``side`` pixels.

    With "same" padding an output pixel sees inputs at offsets ``-k//2 .. k//2``; offsets
    of ``side`` or more only ever meet padding zeros, so ``2 * side - 1`` taps already give
    every output pixel every input pixel. Trimming changes nothing the network can express
    and saves the dead weights' compute: a 5x5 kernel on the 2x2 maps of a deep digits
    CNN would multiply zeros in 16 of its 25 taps.
    """
    return min(kernel_size, 2 * side - 1)


def build_cnn(input_shape: tuple[int, ...], n_classes: int, params: Mapping[str, Any]) -> nn.Module:
    """Build a CNN mapping ``(N, C*H*W)`` (or ``(N, C, H, W)``) batches to ``n_classes`` logits.

    ``input_shape`` is one sample's ``(C, H, W)``; anything else raises ``ValueError``
    naming ``input_shape``. Reads from ``params`` (other keys are ignored, so a whole
    trial dict can be passed):

    - ``conv_blocks`` int >= 1: convolution blocks, each
      Conv2d -> BatchNorm2d (if ``batch_norm``) -> activation -> 2x2 pool;
    - ``filters`` int >= 1: output channels of the first block. Channels double each time
      a block pools (the map shrinks 4x, so per-block compute stays about constant), which
      bounds the width at ``filters * 2**floor(log2(min(H, W)))`` for any number of blocks;
    - ``kernel_size`` one of :data:`KERNEL_SIZES`, with "same" padding; a block whose map
      is smaller than the kernel gets a kernel trimmed to ``2 * side - 1`` (3 on 2x2, 1 on
      1x1), since the trimmed taps would only ever see padding;
    - ``pooling`` ``"max"`` | ``"avg"`` | ``"none"``: a block pools (stride 2, floor) only
      while both spatial sides are >= 2, so the map never shrinks below 1x1 and any
      number of blocks is valid on 8x8 input;
    - ``activation`` one of :data:`models.mlp.ACTIVATIONS`;
    - ``dropout`` float in [0, 1), applied after the hidden dense layer (not to feature
      maps: on maps as small as 8x8 dropping pixels mostly removes signal);
    - ``batch_norm`` bool, after every convolution and the hidden dense layer;
    - ``dense_units`` int >= 1: width of the one hidden dense layer before the
      classifier.

    The head is Flatten -> Linear(dense_units) -> [BatchNorm1d] -> activation ->
    [Dropout] -> Linear(n_classes); no softmax (training uses cross-entropy on logits).
    """
    channels, height, width = _image_shape(input_shape)
    require(n_classes >= 2, "n_classes", f"must be >= 2, got {n_classes}")

    read = ParamReader(params, CNN_DEFAULTS)
    conv_blocks = read.int_at_least("conv_blocks", 1)
    filters = read.int_at_least("filters", 1)
    kernel_size = read.one_of("kernel_size", KERNEL_SIZES)
    pooling = read.choice("pooling", POOLINGS)
    activation = read.choice("activation", ACTIVATIONS)
    dropout = read.fraction("dropout")
    batch_norm = read.flag("batch_norm")
    dense_units = read.int_at_least("dense_units", 1)

    pool = POOLINGS[pooling]
    layers: list[nn.Module] = [_ToImage((channels, height, width))]
    in_channels, out_channels = channels, filters
    for _ in range(conv_blocks):
        kernel = (_useful_kernel(kernel_size, height), _useful_kernel(kernel_size, width))
        # A conv followed by BatchNorm needs no bias: the norm's shift replaces it.
        layers.append(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel,
                padding=(kernel[0] // 2, kernel[1] // 2),
                bias=not batch_norm,
            )
        )
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(ACTIVATIONS[activation]())
        in_channels = out_channels
        if pool is not None and min(height, width) >= 2:
            layers.append(pool(kernel_size=2, stride=2))
            height, width = height // 2, width // 2
            out_channels = in_channels * 2

    layers.append(nn.Flatten())
    layers.append(nn.Linear(in_channels * height * width, dense_units))
    if batch_norm:
        layers.append(nn.BatchNorm1d(dense_units))
    layers.append(ACTIVATIONS[activation]())
    if dropout > 0.0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(dense_units, n_classes))
    return nn.Sequential(*layers)
