"""Data set registry, the digits and synthetic loaders, and the per-process cache."""

from __future__ import annotations

import pytest
import torch

from models.datasets import (
    DATASETS,
    Dataset,
    UnknownDatasetError,
    clear_dataset_cache,
    dataset_names,
    load_dataset,
    register_dataset,
)


def test_digits_shapes_and_split_sizes() -> None:
    ds = load_dataset("digits")
    assert ds.name == "digits"
    assert (ds.n_features, ds.n_classes, ds.input_shape) == (64, 10, (1, 8, 8))
    # 1797 images, 20 % held out (sklearn rounds the test part up).
    assert (ds.n_train, ds.n_val) == (1437, 360)
    assert ds.x_train.shape == (1437, 64) and ds.x_val.shape == (360, 64)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.x_val.dtype == torch.float32 and ds.y_val.dtype == torch.int64
    # Flat storage reshapes to the per-sample image shape.
    assert ds.x_train.reshape(-1, *ds.input_shape).shape == (1437, 1, 8, 8)


def test_digits_pixels_are_scaled_to_unit_interval() -> None:
    ds = load_dataset("digits")
    for x in (ds.x_train, ds.x_val):
        assert float(x.min()) == 0.0
        assert float(x.max()) == 1.0


def test_digits_split_is_stratified() -> None:
    ds = load_dataset("digits", seed=3)
    train_counts = torch.bincount(ds.y_train, minlength=10)
    val_counts = torch.bincount(ds.y_val, minlength=10)
    totals = train_counts + val_counts
    assert int(totals.sum()) == 1797
    # Every class is in the validation split in (almost exactly) its overall proportion.
    expected = totals.double() * 0.2
    assert torch.all((val_counts.double() - expected).abs() <= 1.0)


def test_val_fraction_changes_the_split_size() -> None:
    ds = load_dataset("digits", val_fraction=0.5)
    assert ds.n_train + ds.n_val == 1797
    assert abs(ds.n_val - ds.n_train) <= 1


def test_load_dataset_is_cached_per_arguments() -> None:
    first = load_dataset("digits", seed=0)
    assert load_dataset("digits", seed=0) is first
    other = load_dataset("digits", seed=1)
    assert other is not first
    assert not torch.equal(other.y_val, first.y_val)  # another seed, another split


def test_clear_cache_reloads_the_same_split() -> None:
    first = load_dataset("synthetic", seed=5)
    clear_dataset_cache()
    again = load_dataset("synthetic", seed=5)
    assert again is not first
    assert torch.equal(again.x_train, first.x_train)
    assert torch.equal(again.y_val, first.y_val)


def test_synthetic_dataset() -> None:
    ds = load_dataset("synthetic")
    assert (ds.n_features, ds.n_classes, ds.input_shape) == (20, 3, (20,))
    assert (ds.n_train, ds.n_val) == (800, 200)
    assert torch.isfinite(ds.x_train).all()
    # The problem is fixed; the seed only moves the split.
    a, b = load_dataset("synthetic", seed=0), load_dataset("synthetic", seed=1)
    merged_a = torch.cat([a.x_train, a.x_val]).sum(dim=0)
    merged_b = torch.cat([b.x_train, b.x_val]).sum(dim=0)
    assert torch.allclose(merged_a, merged_b, atol=1e-3)


def test_names() -> None:
    assert dataset_names() == sorted(DATASETS)
    assert {"digits", "synthetic"} <= set(dataset_names())


def test_unknown_dataset_names_the_known_ones() -> None:
    with pytest.raises(UnknownDatasetError) as info:
        load_dataset("imagenet")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert message.startswith("unknown dataset 'imagenet'")
    assert "digits" in message and "synthetic" in message


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_val_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("digits", val_fraction=fraction)


def test_register_dataset() -> None:
    def tiny(*, seed: int, val_fraction: float) -> Dataset:
        x = torch.arange(8, dtype=torch.float32).reshape(4, 2)
        y = torch.tensor([0, 1, 0, 1])
        return Dataset("tiny", x, y, x, y, n_features=2, n_classes=2, input_shape=(2,))

    register_dataset("tiny-test")(tiny)
    try:
        assert load_dataset("tiny-test").n_train == 4
        with pytest.raises(ValueError, match="already registered"):
            register_dataset("tiny-test")(tiny)
    finally:
        del DATASETS["tiny-test"]
        clear_dataset_cache()


def test_dataset_checks_its_invariants() -> None:
    x = torch.zeros(4, 2)
    y = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="x_train"):
        Dataset("bad", x.double(), y, x, y, n_features=2, n_classes=2, input_shape=(2,))
    with pytest.raises(ValueError, match="y_val"):
        Dataset("bad", x, y, x, y[:3], n_features=2, n_classes=2, input_shape=(2,))
    with pytest.raises(ValueError, match="input_shape"):
        Dataset("bad", x, y, x, y, n_features=2, n_classes=2, input_shape=(3,))
