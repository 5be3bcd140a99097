"""The chaos soak's training function (``train.entrypoint:
benchmarks.chaos_trainable:train``) and the evidence it leaves behind.

It trains nothing: each step sleeps ``params["step_seconds"]`` and its objective is
:func:`objective`, a deterministic function of the parameters and the step, so any
attempt of a trial reports the same value at the same step and the checker can tell
what a trial's value must be. It follows the README's resumable-trainable contract to
the letter: it saves a checkpoint (the step, stored inside it, written to a temporary
file and renamed into place) into ``reporter.checkpoint_dir`` *before* every report,
resumes after the step that checkpoint holds, and returns None (the last reported
objective is the trial's value). It saves half-way through a step (after "training",
before "evaluating"), as the contract allows: a kill then lands as often between a
save and its report as anywhere else.

Every attempt appends what it did to an evidence file of its own process,
``$HPO_CHAOS_EVIDENCE/<pid>.jsonl``: one JSON line per event, written with a single
``write`` on an ``O_APPEND`` descriptor and fsynced before training goes on, so a
``kill -9`` keeps every line written before it. Events (each with ``t``, ``pid``,
``study``, ``trial`` (number), ``attempt`` and ``epochs``):

* ``start``: ``resume_step`` (what the reporter says) and ``checkpoint_step`` (what the
  folder really holds, None when it holds nothing);
* ``step``: ``step`` was trained and checkpointed (its report follows half a step on);
* ``stop``: the report of ``step`` answered stop;
* ``raise``: the reporter raised ``error`` (e.g. the attempt was fenced off);
* ``return``: the function returns; ``step`` is where its state ends, ``trained`` how
  many steps this attempt trained.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["CHECKPOINT", "EVIDENCE_ENV", "METRIC", "objective", "read_checkpoint", "train"]

#: The environment variable naming the folder the evidence files go to.
EVIDENCE_ENV = "HPO_CHAOS_EVIDENCE"
#: The checkpoint file inside ``reporter.checkpoint_dir``.
CHECKPOINT = "state.json"
#: The objective metric the function reports (minimised).
METRIC = "loss"

_fd: int | None = None  # this process's evidence file, opened once


def objective(params: dict[str, Any], step: int) -> float:
    """The loss at ``step`` for ``params`` (``x`` in [0, 1], ``y`` > 0): a bowl around
    (0.3, 0.01) that shrinks towards its floor as steps go by."""
    bowl = (float(params["x"]) - 0.3) ** 2 + 0.1 * (math.log10(float(params["y"])) + 2) ** 2
    return bowl + 1.0 / (1 + step)


def read_checkpoint(directory: Path) -> int | None:
    """The step stored in ``directory``'s checkpoint; None when there is none."""
    try:
        return int(json.loads((directory / CHECKPOINT).read_text())["step"])
    except FileNotFoundError:
        return None


def _write_checkpoint(directory: Path, step: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{CHECKPOINT}.tmp"
    tmp.write_text(json.dumps({"step": step}))
    os.replace(tmp, directory / CHECKPOINT)  # whole or absent, even under kill -9


def _evidence(event: str, reporter: Any, **fields: Any) -> None:
    """Append one event line and fsync it (a no-op without ``$HPO_CHAOS_EVIDENCE``)."""
    global _fd
    folder = os.environ.get(EVIDENCE_ENV)
    if not folder:
        return
    if _fd is None:
        path = Path(folder) / f"{os.getpid()}.jsonl"
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    record = {
        "t": time.time(),
        "pid": os.getpid(),
        "event": event,
        "study": reporter.study,
        "trial": reporter.trial_number,
        "attempt": reporter.attempt,
        "epochs": reporter.epochs,
        **fields,
    }
    # One write of a whole line on an O_APPEND descriptor: never torn or interleaved.
    os.write(_fd, (json.dumps(record) + "\n").encode())
    os.fsync(_fd)


def train(params: dict[str, Any], reporter: Any) -> None:
    """Train ``reporter.epochs`` steps of ``params["step_seconds"]`` each, checkpointing
    and then reporting :data:`METRIC` at every step; resume after the checkpoint's own
    step when the folder holds one (see the module doc for the evidence written)."""
    folder = Path(reporter.checkpoint_dir)
    saved = read_checkpoint(folder)
    _evidence("start", reporter, resume_step=reporter.resume_step, checkpoint_step=saved)
    # The step stored inside the checkpoint decides, as the README advises; a
    # disagreement with resume_step is in the evidence for the checker to count.
    step = saved or 0
    trained = 0
    try:
        half = float(params["step_seconds"]) / 2
        for next_step in range(step + 1, reporter.epochs + 1):
            time.sleep(half)  # "training"
            _write_checkpoint(folder, next_step)
            step, trained = next_step, trained + 1
            _evidence("step", reporter, step=step)
            time.sleep(half)  # "evaluating": a kill now finds the folder ahead of reports
            if reporter.report(step, **{METRIC: objective(params, step)}):
                _evidence("stop", reporter, step=step)
                break
    except BaseException as err:  # fenced off, told to stop twice, shut down: on record
        _evidence("raise", reporter, step=step, error=type(err).__name__)
        raise
    _evidence("return", reporter, step=step, trained=trained)
