"""Device choice and process-wide seeding.

:func:`select_device` is pure logic over ``torch.cuda.is_available()`` and
``torch.cuda.device_count()``, so it is testable on a machine without a GPU by
monkeypatching those two functions.
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_everything", "select_device", "visible_devices"]


def select_device(preference: str | None = None) -> torch.device:
    """Resolve a device preference to a ``torch.device``.

    ``None`` or ``"auto"``: CUDA (the current device) when available, else CPU.
    ``"cpu"``: the CPU. ``"cuda"`` / ``"cuda:N"``: that GPU, or ``ValueError`` when CUDA is
    unavailable or ``N`` is out of range; asking for a GPU explicitly and silently getting
    the CPU would make a run hundreds of times slower without telling anyone.
    Anything else is a ``ValueError``.
    """
    choice = "auto" if preference is None else preference.strip().lower()
    if choice == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        index_text = choice.partition(":")[2]
        if index_text and not index_text.isdigit():
            raise ValueError(f"device: bad CUDA device {preference!r}; use 'cuda' or 'cuda:N'")
        if not torch.cuda.is_available():
            raise ValueError(f"device: {preference!r} requested but CUDA is not available")
        if not index_text:
            return torch.device("cuda")
        index = int(index_text)
        count = torch.cuda.device_count()
        if index >= count:
            raise ValueError(
                f"device: {preference!r} requested but only {count} CUDA device(s) exist "
                f"(cuda:0..cuda:{count - 1})"
            )
        return torch.device("cuda", index)
    raise ValueError(f"device: unknown {preference!r}; known: auto, cpu, cuda, cuda:N")


def visible_devices() -> list[str]:
    """Every torch device this process may use, ``["cuda:0", "cuda:1", ...]`` (a
    worker sets ``CUDA_VISIBLE_DEVICES`` to a trial's GPUs before torch loads, so these
    are exactly the trial's), or ``["cpu"]`` without CUDA."""
    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]
    return ["cpu"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every GPU).

    This changes process-wide state on purpose (call it before building a model so its
    initial weights are reproducible). ``train`` does not need it: it seeds its own
    shuffling and dropout from its ``seed`` argument.
    """
    random.seed(seed)
    # NumPy's legacy global seed must fit in 32 bits; fold larger seeds instead of failing.
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
