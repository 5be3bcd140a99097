"""Which of a worker's devices a trial of a given size runs on: the device ledger.

Pure bookkeeping, no torch and no CUDA: a daemon owns one :class:`DeviceLedger` over
its devices (GPU ids, or CPU slots ``cpu0``, ``cpu1``, ...), each of capacity one. A
trial of size ``N >= 1`` (``hpo.resources.demand``) takes ``N`` wholly free devices; a
share ``1/k`` takes part of one device, packed best-fit onto the device with the least
room that still holds it, so that shares fill one GPU before they start on the next and
whole GPUs stay free for whole trials. The ledger never hands out more than it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

__all__ = ["DeviceLedger", "Placement"]

#: The devices one trial holds (a share holds one device, in part).
Placement = tuple[str, ...]


class DeviceLedger:
    """Free room per device; :meth:`take` and :meth:`give` move a trial in and out."""

    def __init__(self, devices: Sequence[str], *, gpus: bool = True) -> None:
        """``devices``: GPU ids, or (``gpus=False``) CPU slots, which hold only
        one-slot trials: a trial that asks for GPUs never runs on a CPU slot."""
        if not devices:
            raise ValueError("a worker needs at least one device or CPU slot")
        if len(set(devices)) != len(devices):
            raise ValueError(f"duplicate devices in {list(devices)}")
        self.devices = tuple(devices)
        self.gpus = gpus
        self._free = {d: Fraction(1) for d in self.devices}

    def free(self, device: str) -> Fraction:
        """Room left on ``device`` (1: idle)."""
        return self._free[device]

    def ever_fits(self, size: Fraction) -> bool:
        """Whether a trial of ``size`` fits this worker when it is idle."""
        if not self.gpus:
            return size == 1
        return size <= 1 or size <= len(self.devices)

    def where(self, size: Fraction) -> Placement | None:
        """Where :meth:`take` would put a trial of ``size`` now; None when it does not
        fit now. Deterministic (device order breaks ties), so the same sizes land on the
        same devices and a daemon reuses the runner processes it has for them."""
        if size <= 0:
            raise ValueError(f"a trial size must be positive, got {size}")
        if not self.ever_fits(size):
            return None
        if size < 1:
            fitting = [d for d in self.devices if self._free[d] >= size]
            if not fitting:
                return None
            return (min(fitting, key=lambda d: (self._free[d], self.devices.index(d))),)
        if size != int(size):
            raise ValueError(f"above one device a trial holds whole devices, got {size}")
        idle = [d for d in self.devices if self._free[d] == 1]
        return tuple(idle[: int(size)]) if len(idle) >= size else None

    def room_for(self, size: Fraction) -> Fraction:
        """How much of a trial of ``size`` fits now: idle devices for a whole-device
        trial, the most room on one device for a share (it fits at ``>= size``)."""
        if size < 1:
            return max(self._free.values())
        return Fraction(sum(1 for room in self._free.values() if room == 1))

    def fits(self, size: Fraction) -> bool:
        """Whether a trial of ``size`` fits now."""
        return self.where(size) is not None

    def take(self, size: Fraction) -> Placement:
        """Reserve room for a trial of ``size``; raises ``ValueError`` when it does not
        fit (the caller asks :meth:`fits` first)."""
        placement = self.where(size)
        if placement is None:
            raise ValueError(f"no room for a trial of {size} device(s)")
        share = size if size < 1 else Fraction(1)
        for device in placement:
            self._free[device] -= share
        return placement

    def give(self, placement: Placement, size: Fraction) -> None:
        """Return what :meth:`take` reserved for a trial of ``size`` at ``placement``."""
        share = size if size < 1 else Fraction(1)
        for device in placement:
            if self._free[device] + share > 1:
                raise ValueError(f"{device}: returned more than was taken")
        for device in placement:
            self._free[device] += share

    def busy(self) -> bool:
        """Whether any trial holds room now."""
        return any(room != 1 for room in self._free.values())
