"""A distributed launch: one trial as ``train.processes`` processes, the way torchrun
starts them.

Rank 0 is the worker's own process: it calls the entrypoint with the trial's real
:class:`~worker.trainable.Reporter`, so only rank 0 reports, and its decisions (stop,
the hand-back on shutdown) are what the trial does. Ranks 1..N-1 are new Python
processes (``python -m worker.distributed``, with this process's ``sys.path``: a
worker's own processes may be daemonic, which ``multiprocessing`` forbids to have
children) that call the same function with a :class:`RankReporter`, which has the same
attributes and reports nothing. Every rank gets torchrun's environment (``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) and sees all of
the trial's devices (``CUDA_VISIBLE_DEVICES`` is the trial's placement: rank ``r`` uses
``cuda:r`` by torchrun's convention), so ``torch.distributed.init_process_group()``
with the default ``env://`` works unchanged, with ``nccl`` on GPUs or ``gloo`` on CPUs.

A decision to stop reaches rank 0 only: the function shares it with the other ranks (a
broadcast), as it shares anything else. Ranks still running once rank 0 has returned
are given a grace, then killed; a rank that failed fails the trial, naming the rank.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Launch", "RankReporter", "rank_env", "rank_info"]

log = logging.getLogger(__name__)

#: Seconds the other ranks get to end once rank 0 has returned.
GRACE = 30.0
_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def rank_env(rank: int, world: int, port: int, addr: str = "127.0.0.1") -> dict[str, str]:
    """torchrun's environment for ``rank`` of ``world`` processes on one machine."""
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(world),
        "MASTER_ADDR": addr,
        "MASTER_PORT": str(port),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rank_info(reporter: Any) -> dict[str, Any]:
    """What the other ranks' reporters show, read off rank 0's reporter."""
    keys = ("study", "trial_number", "attempt", "epochs", "seed", "device", "devices")
    info = {key: getattr(reporter, key) for key in keys}
    info.update(
        checkpoint_dir=str(reporter.checkpoint_dir),
        resume_step=reporter.resume_step,
        metric=reporter.metric,
    )
    return info


class RankReporter:
    """What ranks other than 0 get: the attributes of rank 0's reporter, and a
    ``report`` that sends nothing (rank 0 reports for the trial)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.study: str = info["study"]
        self.trial_number: int = info["trial_number"]
        self.attempt: int = info["attempt"]
        self.epochs: int = info["epochs"]
        self.seed: int = info["seed"]
        self.device: str = info["device"]
        self.devices: list[str] = info["devices"]
        self.checkpoint_dir = Path(info["checkpoint_dir"])
        self.resume_step: int | None = info["resume_step"]
        self.metric: str = info["metric"]
        self.rank: int = info["rank"]
        self.world_size: int = info["world_size"]

    def report(self, step: int, **metrics: Any) -> bool:
        """Nothing is sent; always False (continue): rank 0 holds the decision."""
        return False

    def should_stop(self) -> bool:
        return False


def _rank_main(argv: list[str]) -> int:
    """Body of a rank's process (``argv``: the JSON :class:`Launch` passes); exits
    non-zero when the function raised."""
    job = json.loads(argv[0])
    info = job["info"]
    from models import seed_everything
    from worker.trainable import load_entrypoint

    try:
        function = load_entrypoint(job["entrypoint"])
        seed_everything(int(info["seed"]) + int(info["rank"]))
        function(dict(job["params"]), RankReporter(info))
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


class Launch:
    """Rank 0's environment set in this process and ranks 1..N-1 started, while the
    ``with`` block runs rank 0; :meth:`outcome` then says whether every rank ended
    well. The environment is restored, and any process group rank 0 left open is
    destroyed, on leaving the block."""

    def __init__(self, entrypoint: str, params: dict[str, Any], world: int, info: dict) -> None:
        self.entrypoint, self.params, self.world, self.info = entrypoint, params, world, info
        self.port = _free_port()
        self.ranks: list[subprocess.Popen[bytes]] = []
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> Launch:
        path = os.pathsep.join(p for p in sys.path if p)
        for rank in range(1, self.world):
            job = {
                "entrypoint": self.entrypoint,
                "params": self.params,
                "info": {**self.info, "rank": rank, "world_size": self.world},
            }
            env = {**os.environ, **rank_env(rank, self.world, self.port), "PYTHONPATH": path}
            self.ranks.append(
                subprocess.Popen(
                    [sys.executable, "-m", "worker.distributed", json.dumps(job)], env=env
                )
            )
        self._saved = {key: os.environ.get(key) for key in _KEYS}
        os.environ.update(rank_env(0, self.world, self.port))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        try:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()  # the next trial in this process starts afresh
        except Exception:  # a broken group must not fail the worker
            log.exception("destroying the trial's process group failed")
        if kind is not None:  # rank 0 raised (a fenced attempt): the others end now
            for proc in self.ranks:
                proc.kill()
                proc.wait(5)

    def outcome(self, grace: float = GRACE) -> str | None:
        """Wait up to ``grace`` for the other ranks; the first failure (None: all
        ended well). Ranks still running after the grace are killed."""
        failed = None
        for rank, proc in enumerate(self.ranks, start=1):
            try:
                code = proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                failed = failed or f"rank {rank} of {self.world} still ran {grace:g} s after rank 0"
                continue
            if code != 0 and failed is None:
                failed = f"rank {rank} of {self.world} exited with code {code}"
        return failed


if __name__ == "__main__":
    sys.exit(_rank_main(sys.argv[1:]))
