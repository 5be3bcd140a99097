"""Which slots a worker daemon runs: one per GPU, or CPU slots where there is none.

Pure logic (no torch, no CUDA initialisation): the daemon passes in the environment and
the device count. Each slot's process gets ``CUDA_VISIBLE_DEVICES`` set to its one GPU
before torch is imported, so a trial sees exactly one device, as ``cuda:0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Slot", "cuda_device_count", "parse_gpus", "plan_slots", "visible_gpus"]


@dataclass(frozen=True)
class Slot:
    """One trial at a time runs in a slot."""

    name: str
    devices: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def device(self) -> str:
        """The torch device a trial in this slot uses."""
        return "cuda:0" if self.devices else "cpu"


def cuda_device_count() -> int:
    """How many GPUs torch sees here (0 without CUDA): the one function of this module
    that touches torch, imported here so that planning slots never does."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parse_gpus(value: str | None) -> list[str] | None:
    """``--gpus`` as given: ``None``/``"all"`` = every visible GPU (None), ``"none"``/
    ``"cpu"``/``""`` = no GPU ([]), ``"0,1,3"`` = those GPU ids (or UUIDs).

    Raises ``ValueError`` naming ``--gpus`` for duplicates or empty items.
    """
    if value is None or value.strip().lower() == "all":
        return None
    text = value.strip()
    if text.lower() in ("", "none", "cpu"):
        return []
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise ValueError(f"--gpus: empty item in {value!r}; use e.g. 0,1,2")
    if len(set(items)) != len(items):
        raise ValueError(f"--gpus: duplicate GPU in {value!r}")
    return items


def visible_gpus(environ: Mapping[str, str], device_count: int) -> list[str]:
    """GPU ids this machine shows us: ``CUDA_VISIBLE_DEVICES`` when set (an empty
    value or ``-1`` hides every GPU), else ``0..device_count-1``."""
    if "CUDA_VISIBLE_DEVICES" in environ:
        ids = []
        for item in environ["CUDA_VISIBLE_DEVICES"].split(","):
            item = item.strip()
            if not item or item.startswith("-"):
                break  # CUDA ignores everything from the first invalid id on
            ids.append(item)
        return ids
    return [str(i) for i in range(max(0, device_count))]


def plan_slots(
    gpus: list[str] | None,
    *,
    environ: Mapping[str, str],
    device_count: int,
    cpu_slots: int = 1,
    cores: int = 1,
) -> list[Slot]:
    """One slot per chosen GPU (default: every visible GPU); with none, ``cpu_slots``
    CPU slots that see no GPU at all and split the ``cores`` between them
    (``OMP_NUM_THREADS``, unless ``environ`` sets it): torch starts a thread per core
    in every process, and N slots of N threads on N cores made each epoch ~10x slower."""
    if cpu_slots < 1:
        raise ValueError(f"--slots: must be >= 1, got {cpu_slots}")
    visible = visible_gpus(environ, device_count)
    chosen = visible if gpus is None else gpus
    if gpus is not None and gpus and visible:
        unknown = [g for g in gpus if g not in visible and not g.startswith(("GPU-", "MIG-"))]
        if unknown:
            raise ValueError(
                f"--gpus: {', '.join(unknown)} not visible here (visible: {', '.join(visible)})"
            )
    if not chosen:
        env = {"CUDA_VISIBLE_DEVICES": ""}
        if "OMP_NUM_THREADS" not in environ:
            env["OMP_NUM_THREADS"] = str(max(1, cores // cpu_slots))
        return [Slot(name=f"cpu{i}", devices=(), env=dict(env)) for i in range(cpu_slots)]
    return [Slot(name=f"gpu{g}", devices=(g,), env={"CUDA_VISIBLE_DEVICES": g}) for g in chosen]
