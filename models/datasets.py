"""Data sets for the built-in training: a registry of loaders and a per-process cache.

Every built-in data set ships inside a package (scikit-learn's bundled digits) or is
generated, so nothing here downloads anything. A loader returns a :class:`Dataset` whose
tensors live on the CPU; training moves them to its device.

Contract of the cache: :func:`load_dataset` returns the *same* ``Dataset`` object for the
same ``(name, seed, val_fraction)`` within one process, so a worker loads its data once,
not once per trial. Callers must therefore treat the tensors as read-only.

The registry has the shape of every registry of the project (``search.registry``
describes it): :data:`DATASETS`, :func:`dataset_names`, :func:`get_dataset` (the
loader, or an error naming the field) and :func:`load_dataset`, which builds from it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split

from models._params import UnknownNameError

__all__ = [
    "DATASETS",
    "Dataset",
    "UnknownDatasetError",
    "clear_dataset_cache",
    "dataset_names",
    "get_dataset",
    "load_dataset",
    "register_dataset",
]


# eq=False: the generated __eq__ would compare tensors, whose `==` is elementwise and whose
# truth value is ambiguous; identity equality (and hashing) is what a cached object needs.
@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set split into training and validation parts.

    ``x_train``/``x_val`` are float32 and flat, shape ``(N, n_features)``; ``y_train``/``y_val``
    are int64 class indices in ``[0, n_classes)``. ``input_shape`` is the shape of one
    sample before flattening (``(1, 8, 8)`` for digits) so an image model can reshape.
    Construction checks these invariants and raises ``ValueError`` when one is broken.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_features: int
    n_classes: int
    input_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        for split in ("train", "val"):
            x: torch.Tensor = getattr(self, f"x_{split}")
            y: torch.Tensor = getattr(self, f"y_{split}")
            if x.dtype != torch.float32 or x.dim() != 2 or x.shape[1] != self.n_features:
                raise ValueError(
                    f"x_{split}: expected float32 of shape (N, {self.n_features}), "
                    f"got {x.dtype} {tuple(x.shape)}"
                )
            if y.dtype != torch.int64 or y.dim() != 1 or y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"y_{split}: expected int64 of shape ({x.shape[0]},), "
                    f"got {y.dtype} {tuple(y.shape)}"
                )
            if x.shape[0] == 0:
                raise ValueError(f"x_{split}: the {split} split is empty")
        if self.n_classes < 2:
            raise ValueError(f"n_classes: need at least 2, got {self.n_classes}")
        if math.prod(self.input_shape) != self.n_features:
            raise ValueError(
                f"input_shape: {self.input_shape} does not hold {self.n_features} features"
            )

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.x_train.shape[0])

    @property
    def n_val(self) -> int:
        """Number of validation samples."""
        return int(self.x_val.shape[0])


class UnknownDatasetError(UnknownNameError):
    """Raised by :func:`load_dataset` for a name no loader is registered under."""

    def __init__(self, name: object) -> None:
        super().__init__("dataset", name, DATASETS, field="train.dataset")


#: Loader name -> loader. A loader is called as ``loader(seed=..., val_fraction=...)``.
DATASETS: dict[str, Callable[..., Dataset]] = {}

_cache: dict[tuple[str, int, float], Dataset] = {}
# A worker may run trials in threads; the lock keeps two of them from loading the same
# data set twice (harmless but wasteful) and from racing on the dict.
_cache_lock = threading.Lock()


def register_dataset(
    name: str,
) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    """Decorator: register ``loader`` under ``name``; registering a name twice is an error."""

    def decorate(loader: Callable[..., Dataset]) -> Callable[..., Dataset]:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        DATASETS[name] = loader
        return loader

    return decorate


def dataset_names() -> list[str]:
    """The registered data set names, sorted."""
    return sorted(DATASETS)


def get_dataset(name: str) -> Callable[..., Dataset]:
    """The loader registered as ``name``; :class:`UnknownDatasetError` if there is none."""
    loader = DATASETS.get(name) if isinstance(name, str) else None
    if loader is None:
        raise UnknownDatasetError(name)
    return loader


def load_dataset(name: str, *, seed: int = 0, val_fraction: float = 0.2) -> Dataset:
    """Load (or return the cached) data set ``name`` split with ``seed``.

    ``seed`` decides the train/validation split; ``val_fraction`` in (0, 1) its size.
    Raises :class:`UnknownDatasetError` (a ``KeyError``) for an unregistered name and
    ``ValueError`` for a bad ``val_fraction``.
    """
    loader = get_dataset(name)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: must be in (0, 1), got {val_fraction!r}")
    key = (name, int(seed), float(val_fraction))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            cached = loader(seed=key[1], val_fraction=key[2])
            _cache[key] = cached
        return cached


def clear_dataset_cache() -> None:
    """Forget every cached data set (tests; a long-lived process freeing memory)."""
    with _cache_lock:
        _cache.clear()


def _split(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    val_fraction: float,
    input_shape: tuple[int, ...],
) -> Dataset:
    """Stratified split of ``x``/``y`` into a :class:`Dataset` (stratified so a small
    validation set still holds every class in the training proportions)."""
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=val_fraction, random_state=seed, stratify=y
    )
    return Dataset(
        name=name,
        x_train=torch.as_tensor(x_train, dtype=torch.float32),
        y_train=torch.as_tensor(y_train, dtype=torch.int64),
        x_val=torch.as_tensor(x_val, dtype=torch.float32),
        y_val=torch.as_tensor(y_val, dtype=torch.int64),
        n_features=int(x.shape[1]),
        n_classes=len(np.unique(y)),
        input_shape=input_shape,
    )


@register_dataset("digits")
def _load_digits(*, seed: int, val_fraction: float) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes).

    Pixels are 0..16 in the source; dividing by 16 puts them in [0, 1], the range the
    default initialisations and learning rates expect.
    """
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float32) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    return _split("digits", x, y, seed=seed, val_fraction=val_fraction, input_shape=(1, 8, 8))


# The problem itself is fixed (one generator seed) so every trial of every study sees the
# same task; ``seed`` only moves the train/validation split, as it does for digits.
_SYNTHETIC_PROBLEM_SEED = 1234


@register_dataset("synthetic")
def _load_synthetic(*, seed: int, val_fraction: float) -> Dataset:
    """A generated 3-class problem: 1000 samples, 20 features (10 informative); fast to fit."""
    x, y = make_classification(
        n_samples=1000,
        n_features=20,
        n_informative=10,
        n_redundant=4,
        n_classes=3,
        class_sep=1.5,
        random_state=_SYNTHETIC_PROBLEM_SEED,
    )
    return _split(
        "synthetic",
        x.astype(np.float32),
        y.astype(np.int64),
        seed=seed,
        val_fraction=val_fraction,
        input_shape=(20,),
    )
