"""Training functions that tests name as ``train.entrypoint: helpers.trainables:<name>``.

``tests/`` is on ``sys.path`` (pytest's ``pythonpath``), and local worker processes are
spawned with the parent's ``sys.path``, so worker processes import this module too. The
objective of these studies is ``score`` (maximize): a custom metric name on purpose.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any

STATE = "state.txt"
STOPPED_AT = "stopped_at.txt"


def _save(directory: Path, step: int) -> None:
    tmp = directory / (STATE + ".tmp")
    tmp.write_text(str(step))
    os.replace(tmp, directory / STATE)


def _saved_step(directory: Path) -> int | None:
    path = directory / STATE
    return int(path.read_text()) if path.exists() else None


def curve(params: dict[str, Any], reporter: Any) -> None:
    """``score = quality * step / epochs``: a learning curve whose height is the
    ``quality`` parameter. Saves its step every epoch; resumes after the saved step;
    when told to stop, leaves ``stopped_at.txt`` (the step) in its checkpoint folder."""
    quality = float(params["quality"])
    pause = float(params.get("pause", 0.0))
    start = 1
    if reporter.resume_step is not None:
        start = (_saved_step(reporter.checkpoint_dir) or 0) + 1
    resumed = -1 if reporter.resume_step is None else reporter.resume_step
    for step in range(start, reporter.epochs + 1):
        time.sleep(pause)
        _save(reporter.checkpoint_dir, step)
        stop = reporter.report(
            step,
            score=quality * step / reporter.epochs,
            loss=1.0 - quality * step / reporter.epochs,
            resumed_from=resumed,
            device=reporter.device,
        )
        if stop:
            (reporter.checkpoint_dir / STOPPED_AT).write_text(str(step))
            return


def interrupted(params: dict[str, Any], reporter: Any) -> None:
    """Like :func:`curve`, but the first attempt asks its worker to shut down after
    step ``params["interrupt_at"]`` (the trial is handed back and retried)."""
    from worker.job import SHUTDOWN

    if reporter.attempt == 1:
        for step in range(1, reporter.epochs + 1):
            _save(reporter.checkpoint_dir, step)
            if step == params["interrupt_at"]:
                SHUTDOWN.set()
            if reporter.report(step, score=step / 10, resumed_from=-1):
                return
        return
    curve({"quality": 1.0}, reporter)


def final_only(params: dict[str, Any], reporter: Any) -> dict[str, float]:
    """Reports a curve, then returns a better final value than its last report."""
    reporter.report(1, score=0.25)
    return {"score": 0.75, "other": 1.0}


def never_reports(params: dict[str, Any], reporter: Any) -> None:
    """Returns without reporting anything."""


def wrong_metric(params: dict[str, Any], reporter: Any) -> None:
    """Reports ``accuracy``, not the study's ``score``."""
    reporter.report(1, accuracy=0.5)


def swallows_errors(params: dict[str, Any], reporter: Any) -> None:
    """Reports without the objective and hides the error: the trial must still fail."""
    try:
        reporter.report(1, accuracy=0.5)
    except Exception:
        pass


def nan_objective(params: dict[str, Any], reporter: Any) -> None:
    reporter.report(1, score=0.5)
    reporter.report(2, score=math.nan)


def raises(params: dict[str, Any], reporter: Any) -> None:
    reporter.report(1, score=0.5)
    raise RuntimeError(f"boom at lr={params.get('lr')}")


def exits(params: dict[str, Any], reporter: Any) -> None:
    sys.exit(3)


def returns_a_number(params: dict[str, Any], reporter: Any) -> float:
    reporter.report(1, score=0.5)
    return 0.5


def ignores_stop(params: dict[str, Any], reporter: Any) -> None:
    """Keeps reporting after being told to stop (the next report raises)."""
    for step in range(1, reporter.epochs + 1):
        time.sleep(float(params.get("pause", 0.0)))
        reporter.report(step, score=0.1)


def context(params: dict[str, Any], reporter: Any) -> None:
    """Reports what the reporter says about the trial, as metrics."""
    reporter.report(
        1,
        score=0.5,
        number=reporter.trial_number,
        attempt=reporter.attempt,
        epochs=reporter.epochs,
        seed=reporter.seed,
        device=reporter.device,
        study=reporter.study,
        params=",".join(f"{k}={v}" for k, v in sorted(params.items())),
        folder=str(reporter.checkpoint_dir),
    )


not_a_function = 42


def noisy_failure(params: dict[str, Any], reporter: Any) -> None:
    """Prints from Python (both streams), from a child process and from the OS, reports
    one step, then raises: its log must hold all of it and the whole traceback."""
    import subprocess

    print(f"hello from trial {reporter.trial_number}")
    print("a warning on stderr", file=sys.stderr)
    subprocess.run(["sh", "-c", "echo a line from a child process"], check=True)
    os.write(1, b"straight to the descriptor\n")
    reporter.report(1, score=0.1)
    _deep_failure(3)


def _deep_failure(depth: int) -> None:
    if depth:
        _deep_failure(depth - 1)
    raise ValueError("broken on purpose")


def ticker(params: dict[str, Any], reporter: Any) -> None:
    """Prints ``tick N`` ten times a second for ``params['seconds']``, and, for the
    test that kills its worker, appends each tick with its time to ``params['record']``
    (flushed) once it has been printed."""
    record = Path(str(params["record"]))
    seconds = float(params.get("seconds", 60))
    start = time.time()
    n = 0
    with record.open("a") as out:
        while time.time() - start < seconds:
            print(f"tick {n}", flush=True)
            out.write(f"{n} {time.time()}\n")
            out.flush()
            n += 1
            time.sleep(0.1)
    reporter.report(1, score=1.0)


WEIGHTS = "weights.bin"


def big_second_step(params: dict[str, Any], reporter: Any) -> None:
    """A first attempt saves a small checkpoint at step 1, then a large one (``mb``
    MB of weights) at step 2, whose upload a test kills; it never gets further. A
    retry resumes after its saved step and reports ``whole``: 1 when the checkpoint it
    got holds what that step saved (step 1: no weights; step 2: all of them)."""
    size = int(params["mb"]) << 20
    directory = reporter.checkpoint_dir
    if reporter.resume_step is None:
        _save(directory, 1)
        reporter.report(1, score=0.1, resumed_from=-1, whole=1)
        (directory / WEIGHTS).write_bytes(os.urandom(size))
        _save(directory, 2)
        reporter.report(2, score=0.2, resumed_from=-1, whole=1)
        time.sleep(600)  # the test has killed this process by now
        return
    saved = _saved_step(directory) or 0
    weights = directory / WEIGHTS
    whole = (saved == 1 and not weights.exists()) or (
        saved == 2 and weights.exists() and weights.stat().st_size == size
    )
    for step in range(saved + 1, reporter.epochs + 1):
        _save(directory, step)
        reporter.report(step, score=step / 10, resumed_from=saved, whole=int(whole))


def placement(params: dict[str, Any], reporter: Any) -> None:
    """Records where it ran: appends ``<start> <end> <CUDA_VISIBLE_DEVICES> <gpus>``
    to ``params["record"]`` after holding its devices for ``params["pause"]`` seconds,
    then reports ``score = 1`` once."""
    began = time.time()
    time.sleep(float(params.get("pause", 0.0)))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "-")
    with open(params["record"], "a") as f:
        f.write(f"{began} {time.time()} {visible or '-'} {params['gpus']}\n")
    reporter.report(1, score=1.0, devices=len(reporter.devices))


def allreduce(params: dict[str, Any], reporter: Any) -> None:
    """A distributed trial (``train.processes``): every rank joins a gloo process group
    from torchrun's environment, and each step all-reduces ``rank + 1`` over the ranks,
    so the reported ``score`` is ``world * (world + 1) / 2`` only when every rank took
    part. Each rank appends ``<RANK> <WORLD_SIZE> <reporter.rank>`` to ``params["record"]``;
    rank 0 also reports the decision it got, which it broadcasts to the others."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    with open(params["record"], "a") as f:
        f.write(f"{os.environ['RANK']} {os.environ['WORLD_SIZE']} {reporter.rank}\n")
    for step in range(1, reporter.epochs + 1):
        total = torch.tensor([float(rank + 1)])
        dist.all_reduce(total)
        stop = torch.tensor([1.0 if reporter.report(step, score=float(total)) else 0.0])
        dist.broadcast(stop, src=0)
        if stop.item():
            break
    dist.destroy_process_group()
    if rank == 0 and world != int(params["world"]):
        raise AssertionError(f"world size {world}, expected {params['world']}")
