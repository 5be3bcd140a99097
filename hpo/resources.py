"""What a trial asks of the fleet: a pool of workers and a number of GPUs.

A worker joins one **pool** (``hpo worker --pool a100``; ``default`` when not given)
and a study names the pool its trials run in (``resources: {pool: a100}``), so a
team's A100s, its older cards and its CPU boxes are fleets of their own that studies
pick between. ``gpus`` is how many devices one trial holds: unset, a trial takes one
slot of a worker (one GPU where it has any, or one CPU slot) as it always has; a whole
number N gives it N devices of one worker; a fraction ``1/k`` (0.5, 0.25, ...) packs
``k`` such trials onto one GPU.

This module is the one home of those rules: the spec validates with it, the server
checks a study against its pool's workers with :func:`fits` and :func:`largest_fit`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hpo.vocabulary import DEFAULT_POOL, POOL_PATTERN

__all__ = ["Resources", "demand", "fits", "largest_fit", "pool_error"]

#: Most trials one GPU is shared between (``gpus: 1/64`` is the smallest fraction).
MAX_PACKING = 64
#: Most GPUs one trial may ask for (one worker's devices).
MAX_GPUS = 64


class Resources(BaseModel):
    """A study's ask, per trial: which pool, and how many GPUs."""

    model_config = ConfigDict(extra="forbid")

    pool: str = Field(
        default=DEFAULT_POOL,
        pattern=POOL_PATTERN,
        description="The pool of workers that runs this study's trials.",
    )
    gpus: float | None = Field(
        default=None,
        description=(
            "GPUs per trial: unset = one slot of a worker; N >= 1 (whole) = N devices "
            "of one worker; 1/k (0.5, 0.25, ...) = k trials share one GPU."
        ),
    )

    @field_validator("gpus")
    @classmethod
    def _whole_or_share(cls, gpus: float | None) -> float | None:
        if gpus is None:
            return None
        if not math.isfinite(gpus) or gpus <= 0:
            raise ValueError("must be a positive number of GPUs")
        if gpus >= 1:
            if gpus != int(gpus):
                raise ValueError(
                    f"{gpus:g} GPUs: above one GPU a trial holds whole devices (1, 2, 4, ...)"
                )
            if gpus > MAX_GPUS:
                raise ValueError(f"at most {MAX_GPUS} GPUs per trial")
            return float(int(gpus))
        k = round(1 / gpus)
        if k > MAX_PACKING or not math.isclose(gpus * k, 1.0, rel_tol=1e-6):
            raise ValueError(
                f"{gpus:g} of a GPU: a share must be 1/k of one GPU "
                f"(0.5, 0.25, 0.125, ... down to 1/{MAX_PACKING})"
            )
        return 1.0 / k

    @property
    def devices(self) -> int:
        """Devices one trial holds (a share holds part of one)."""
        if self.gpus is None:
            return 0
        return max(1, int(self.gpus))

    @property
    def per_gpu(self) -> int:
        """Trials that share one GPU (1 for whole devices)."""
        if self.gpus is None or self.gpus >= 1:
            return 1
        return round(1 / self.gpus)


def demand(gpus: float | None) -> Fraction:
    """Slots one trial holds, exactly: 1 when ``gpus`` is unset (one slot of a worker:
    a GPU, or a CPU slot), ``N`` for N whole GPUs, ``1/k`` for a share of one GPU.

    Exact fractions, so that four quarters fill one GPU with nothing left over: the
    server's dispatch and a worker's device ledger both count with this."""
    if gpus is None:
        return Fraction(1)
    if gpus >= 1:
        return Fraction(int(gpus))
    return Fraction(1, round(1 / gpus))


def fits(resources: Resources, gpu_count: int) -> bool:
    """Whether a worker with ``gpu_count`` GPUs can ever run one such trial."""
    if resources.gpus is None:
        return True
    return gpu_count >= resources.devices


def largest_fit(gpu_counts: Iterable[int]) -> int:
    """The most GPUs any one of these workers has (0: none has a GPU, or none at all)."""
    return max(gpu_counts, default=0)


def pool_error(resources: Resources, gpu_counts: list[int]) -> str | None:
    """Why no worker of the pool, as registered now, can run such a trial; None when
    one can, or when the pool has no worker yet (a study may wait for its fleet)."""
    if not gpu_counts or any(fits(resources, n) for n in gpu_counts):
        return None
    most = largest_fit(gpu_counts)
    have = (
        f"its largest worker has {most} GPU{'s' if most != 1 else ''}"
        if most
        else ("its workers have no GPU")
    )
    return (
        f"a trial asks for {resources.gpus:g} GPU{'s' if resources.gpus != 1 else ''} "
        f"but {have} in pool {resources.pool!r} ({len(gpu_counts)} worker"
        f"{'s' if len(gpu_counts) != 1 else ''})"
    )
