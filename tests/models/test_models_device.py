"""select_device (pure logic over torch.cuda, tested without a GPU) and seed_everything."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from models.device import seed_everything, select_device


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch):
    """Pretend ``count`` GPUs exist (0 = CUDA unavailable)."""

    def install(count: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)

    return install


@pytest.mark.parametrize("preference", [None, "auto", " AUTO "])
def test_auto_prefers_cuda(fake_cuda, preference: str | None) -> None:
    fake_cuda(2)
    assert select_device(preference) == torch.device("cuda")
    fake_cuda(0)
    assert select_device(preference) == torch.device("cpu")


def test_cpu_is_always_cpu(fake_cuda) -> None:
    fake_cuda(4)
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("CPU") == torch.device("cpu")


def test_explicit_cuda(fake_cuda) -> None:
    fake_cuda(2)
    assert select_device("cuda") == torch.device("cuda")
    assert select_device("cuda:1") == torch.device("cuda", 1)


def test_missing_cuda_is_an_error_not_a_silent_cpu(fake_cuda) -> None:
    fake_cuda(0)
    with pytest.raises(ValueError, match="CUDA is not available"):
        select_device("cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        select_device("cuda:0")


def test_out_of_range_gpu(fake_cuda) -> None:
    fake_cuda(2)
    with pytest.raises(ValueError, match=r"only 2 CUDA device\(s\) exist"):
        select_device("cuda:2")


@pytest.mark.parametrize("preference", ["cuda:x", "cuda:-1", "tpu", "", "gpu"])
def test_bad_preferences(fake_cuda, preference: str) -> None:
    fake_cuda(1)
    with pytest.raises(ValueError, match=r"^device: "):
        select_device(preference)


def test_seed_everything_repeats_every_rng() -> None:
    def draw() -> tuple[float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    state = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    try:
        seed_everything(42)
        first = draw()
        seed_everything(42)
        assert draw() == first
        seed_everything(43)
        assert draw() != first
        seed_everything(2**40)  # larger than NumPy's legacy 32-bit seed range
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.set_rng_state(state[2])
