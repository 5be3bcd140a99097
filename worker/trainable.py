"""Bring your own training code: run a study's ``train.entrypoint`` function as a trial.

A spec may name ``package.module:function`` instead of a built-in model. The worker
imports it (the server never does) and calls ``function(params, reporter)``, like Ray
Tune's function trainable: ``params`` is the trial's parameters (suggested merged over
fixed), ``reporter`` is a :class:`Reporter` whose ``report(step, **metrics)`` goes
through the same path as a built-in trial's per-epoch report and answers whether to
stop. Knows nothing of HTTP: ``worker.job`` supplies the ``send`` callable.

Contract with the function:

* it returns ``None`` or a dict of final metrics; the objective is the dict's
  ``objective.metric`` when present, else the last reported value of it;
* after ``report`` returns True it should return soon (a further ``report`` raises
  :class:`TrialStopped`, which the worker handles);
* it may save anything into ``reporter.checkpoint_dir``; a report made after files there
  changed freezes the folder as the step's checkpoint (``worker.snapshots``), and a later
  attempt (a retry, or a Hyperband/ASHA promotion) finds exactly those files there, with
  ``reporter.resume_step`` set, whatever was written after that report.

Whatever goes wrong in user code (import errors, a missing function, an exception, a
missing or NaN objective) ends the trial as failed with a readable reason; it never
crashes the worker.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import shutil
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from hpo.schemas import ReportIn, TrialSpec
from hpo.spec import ENTRYPOINT_PATTERN
from models import seed_everything, select_device, visible_devices
from worker.bridge import checkpoint_path
from worker.distributed import Launch, rank_info
from worker.lease import Fenced
from worker.snapshots import Snapshots, fingerprint

__all__ = [
    "EntrypointError",
    "Outcome",
    "ReportError",
    "Reporter",
    "TrialStopped",
    "checkpoint_dir_for",
    "load_entrypoint",
    "prepare_checkpoint_dir",
    "run_entrypoint",
]

log = logging.getLogger(__name__)

#: ``send(report)`` delivers one report and returns True when the trial must stop.
Send = Callable[[ReportIn], bool]


class EntrypointError(Exception):
    """The entrypoint cannot be imported or is not a function (message is the reason)."""


class ReportError(Exception):
    """A report the trial cannot go on from: a missing, non-numeric or NaN objective, a
    step out of order. The trial fails with this message."""


class TrialStopped(Exception):
    """Raised by :meth:`Reporter.report` when the function reports again after being told
    to stop. The worker catches it; the trial ends as it would have on return."""


def checkpoint_dir_for(artifact_dir: Path, spec: TrialSpec) -> Path:
    """The trial's checkpoint folder in the artifact store, next to where a built-in
    trial keeps its ``checkpoint.pt``; the same for every attempt of the trial."""
    return checkpoint_path(artifact_dir, spec).parent / "checkpoint"


def load_entrypoint(entrypoint: str) -> Callable[..., Any]:
    """Import ``package.module:function`` and return the function.

    The worker's current directory is searched last (after installed packages and
    ``PYTHONPATH``), so a project can run ``hpo worker`` from its own folder. Raises
    :class:`EntrypointError` whose message names the entrypoint and the cause.
    """
    if not ENTRYPOINT_PATTERN.fullmatch(entrypoint):
        raise EntrypointError(f"entrypoint {entrypoint!r} is not package.module:function")
    module_name, _, name = entrypoint.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)  # last: never shadows an installed package
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as err:  # not found, or its top-level code failed
        raise EntrypointError(
            f"cannot import entrypoint {entrypoint!r}: {_one_line(err)} (the module must "
            f"be importable on the worker: installed, on PYTHONPATH, or under the worker's "
            f"working directory {cwd})"
        ) from None
    function = getattr(module, name, None)
    if function is None:
        raise EntrypointError(
            f"entrypoint {entrypoint!r}: module {module_name!r} has no attribute {name!r}"
        )
    if not callable(function):
        raise EntrypointError(
            f"entrypoint {entrypoint!r} is not a function ({name!r} is of type "
            f"{type(function).__name__})"
        )
    return function


def prepare_checkpoint_dir(
    directory: Path, source: Path | None, step: int | None, *, trial: int | str = "?"
) -> int | None:
    """Make the working folder ``directory`` hold exactly what this attempt may resume
    from, and return the step it ends at (None: start from scratch, and the folder is
    empty).

    ``source`` is the checkpoint the server stored for the trial (resolved in the
    artifact store), ``step`` its step: a snapshot of the trial's own (a retry) or of
    its parent's (a Hyperband/ASHA promotion). The folder gets a copy of it, so
    whatever was written after the last report (an attempt that died before reporting
    it) is gone, and the function never mistakes it for a resumable state; the trial's
    other snapshots are removed. A source that is the working folder itself (trials
    stored before snapshots) is kept as it is.
    """
    snapshots = Snapshots(directory)
    if source is not None and step is not None:
        try:
            if source.is_dir() and any(source.iterdir()):
                if source.resolve() != directory.resolve():
                    _clear(directory)
                    shutil.copytree(source, directory, dirs_exist_ok=True)
                snapshots.keep_only(source)
                return step
            log.warning("trial %s: checkpoint %s is gone; starting over", trial, source)
        except OSError as err:
            log.warning("trial %s: cannot resume from %s (%s)", trial, source, err)
    _clear(directory)
    directory.mkdir(parents=True, exist_ok=True)
    snapshots.keep_only(None)
    return None


def _clear(directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)


def _one_line(err: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(err), err)).strip().splitlines()[-1]


def _scalar(name: str, value: Any) -> float | int | str | bool | None:
    """A metric as the report stores it; numpy scalars and 0-d tensors become numbers."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            value = item()
        except (TypeError, ValueError, RuntimeError):
            pass
        else:
            if isinstance(value, bool | int | float):
                return value
    raise ReportError(
        f"metric {name!r} is a {type(value).__name__}; report numbers (or short strings)"
    )


class Reporter:
    """What the user's function gets as its second argument.

            Attributes (read-only by convention): ``study``, ``trial_number``, ``attempt``,
            ``epochs`` (this trial's budget: report steps up to it), ``seed`` (the worker seeds
            ``random``, NumPy and torch with it before the call), ``device`` (``"cpu"`` or
            ``"cuda:N"``: the device this worker runs trials on), ``devices`` (every device the
        trial holds: ``["cuda:0", "cuda:1"]`` for ``resources.gpus: 2``, ``["cpu"]`` without
        CUDA; a multi-GPU trial spreads its work over them), ``rank`` and ``world_size`` (with
    ``train.processes: N`` the trial runs as N processes launched as torchrun does, and
    this reporter is rank 0's: see ``worker.distributed``), ``checkpoint_dir`` (a folder
            for this trial in the artifact store, kept across attempts), ``resume_step`` (the
            step whose checkpoint is in ``checkpoint_dir`` when this attempt resumes, else None).
    """

    def __init__(
        self,
        spec: TrialSpec,
        send: Send,
        *,
        device: str,
        checkpoint_dir: Path,
        resume_step: int | None = None,
        acknowledged: Callable[[], int | None] | None = None,
    ) -> None:
        self.study = spec.study
        self.trial_number = spec.number
        self.attempt = spec.attempt
        self.epochs = spec.epochs
        self.seed = spec.seed
        self.device = device
        self.devices = visible_devices()
        #: torchrun's rank and world size (``train.processes``): this reporter is rank 0's
        self.rank, self.world_size = 0, spec.train.processes
        self.checkpoint_dir = checkpoint_dir
        self.resume_step = resume_step
        self.metric = spec.objective.metric
        self._send = send
        self._acknowledged = acknowledged
        self._snapshots = Snapshots(checkpoint_dir)
        self._seen = fingerprint(checkpoint_dir) if checkpoint_dir.exists() else {}
        self.last_step: int | None = None
        self.last_value: float | None = None
        self.stopped = False
        self.fenced = False
        self.failure: str | None = None

    @property
    def should_stop(self) -> bool:
        """True once a report answered stop: finish up and return."""
        return self.stopped

    def report(self, step: int, **metrics: Any) -> bool:
        """Report ``metrics`` at ``step`` (an epoch number, increasing); True means stop:
        the server's stopping rule or strategy pruned the trial, the study was stopped or
        the worker is shutting down. The metrics must include the study's objective metric
        as a finite number; otherwise this raises :class:`ReportError` and the trial
        fails with that reason. Save a checkpoint *before* reporting its step."""
        if self.stopped:
            raise TrialStopped(f"report at step {step} after the trial was told to stop")
        if self.failure is not None:
            raise ReportError(self.failure)
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            self._fail(f"report step must be an int >= 0, got {step!r}")
        if self.last_step is not None and step <= self.last_step:
            self._fail(f"report steps must increase: step {step} after step {self.last_step}")
        try:
            values = {name: _scalar(name, value) for name, value in metrics.items()}
        except ReportError as err:
            self._fail(str(err))
        if self.metric not in values:
            self._fail(
                f"the training function reports no metric {self.metric!r} (the study's "
                f"objective); it reports {sorted(values)}"
            )
        value = values[self.metric]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._fail(f"objective {self.metric!r} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            self._fail(f"objective {self.metric!r} is {value} at step {step}: training diverged")
        now = fingerprint(self.checkpoint_dir) if self.checkpoint_dir.exists() else {}
        saved = None
        if now and now != self._seen:  # saved in this step: freeze it as the step's
            saved = self._snapshots.relative(self._snapshots.take(step, now))
        try:
            body = ReportIn(
                attempt=self.attempt, step=step, value=value, metrics=values, checkpoint=saved
            )
        except ValidationError as err:
            self._fail(f"invalid report at step {step}: {err.errors()[0]['msg']}")
        try:
            stop = self._send(body)
        except Fenced:
            self.fenced = True
            raise
        self._seen = now
        if saved is not None:
            # Without a way to ask, a send that returned is a delivered report.
            acked = step if self._acknowledged is None else self._acknowledged()
            if acked is not None:
                self._snapshots.prune(keep_from=acked)
        self.last_step, self.last_value = step, value
        if stop:
            self.stopped = True
        return stop

    def _fail(self, message: str) -> NoReturn:
        # Kept as well as raised: the trial fails even if the function swallows it.
        self.failure = message
        raise ReportError(message)


@dataclass(frozen=True)
class Outcome:
    """How the function's run ended: ``error`` set means the trial failed; otherwise
    ``value`` is the objective (None: this attempt resumed from a checkpoint and
    reported nothing, so the trial's value is the one reported before) and ``stopped``
    says whether a report answered stop."""

    value: float | None = None
    stopped: bool = False
    error: str | None = None


def device_name(device: str | None) -> str:
    """The torch device trials use on this worker, as a string (``cuda`` -> ``cuda:N``)."""
    where = select_device(device)
    if where.type == "cuda" and where.index is None:
        import torch

        return f"cuda:{torch.cuda.current_device()}"
    return str(where)


def run_entrypoint(
    spec: TrialSpec,
    send: Send,
    *,
    device: str | None,
    checkpoint_dir: Path,
    resume_from: Path | None = None,
    acknowledged: Callable[[], int | None] | None = None,
) -> Outcome:
    """Import ``spec.train.entrypoint``, call it with the trial's parameters and a
    :class:`Reporter`, and say how it ended. ``resume_from`` is where the spec's
    checkpoint lies in this worker's artifact store; ``acknowledged`` tells the newest
    checkpoint step the server has (older snapshots are removed). Never raises for the
    function's own failures; raises :class:`~worker.lease.Fenced` when the attempt was
    superseded."""
    entrypoint = spec.train.entrypoint or ""
    try:
        function = load_entrypoint(entrypoint)
        where = device_name(device)
    except (EntrypointError, ValueError) as err:
        return Outcome(error=str(err))
    resume_step = prepare_checkpoint_dir(
        checkpoint_dir, resume_from, spec.checkpoint_step, trial=spec.trial_id
    )
    if resume_step is not None:
        log.info("trial %s resumes after step %d", spec.trial_id, resume_step)
    reporter = Reporter(
        spec,
        send,
        device=where,
        checkpoint_dir=checkpoint_dir,
        resume_step=resume_step,
        acknowledged=acknowledged,
    )
    seed_everything(spec.seed)
    if spec.train.processes > 1:
        world = spec.train.processes
        with Launch(entrypoint, dict(spec.params), world, rank_info(reporter)) as ranks:
            result, crash = _call(function, spec, reporter)
        crash = crash or ranks.outcome()
    else:
        result, crash = _call(function, spec, reporter)
    if reporter.fenced:
        raise Fenced(f"trial {spec.trial_id} attempt {spec.attempt}")
    if reporter.failure is not None:
        return Outcome(error=reporter.failure)
    if crash is not None:
        return Outcome(error=crash)
    return _conclude(entrypoint, reporter, result)


def _call(
    function: Callable[..., Any], spec: TrialSpec, reporter: Reporter
) -> tuple[Any, str | None]:
    """Call the user's function: what it returned, and why it crashed (None: it did not)."""
    entrypoint = spec.train.entrypoint or ""
    try:
        return function(dict(spec.params), reporter), None
    except (TrialStopped, ReportError, Fenced):
        return None, None  # the reporter holds the state that decides the outcome
    except SystemExit as err:  # sys.exit() in user code must not end the worker
        return None, f"{entrypoint} called sys.exit({err.code!r})"
    except Exception as err:
        log.exception("trial %s: %s raised", spec.trial_id, entrypoint)
        return None, f"{entrypoint} raised {_one_line(err)}"


def _conclude(entrypoint: str, reporter: Reporter, result: Any) -> Outcome:
    """The objective from the function's return value, else its last report."""
    metric = reporter.metric
    if result is not None and not isinstance(result, Mapping):
        return Outcome(
            error=f"{entrypoint} returned a {type(result).__name__}; "
            "return None or a dict of final metrics"
        )
    value = reporter.last_value
    if result is not None and metric in result:
        try:
            final = _scalar(metric, result[metric])
        except ReportError as err:
            return Outcome(error=f"final {err}")
        if isinstance(final, bool) or not isinstance(final, int | float):
            return Outcome(error=f"final objective {metric!r} must be a number, got {final!r}")
        value = float(final)
        if not math.isfinite(value):
            return Outcome(error=f"final objective {metric!r} is {value}: training diverged")
    if value is None and reporter.resume_step is None:
        return Outcome(
            error=f"{entrypoint} reported no {metric!r} (the study's objective): call "
            f"reporter.report(step, {metric}=...) or return {{{metric!r}: ...}}"
        )
    # None after a resume: the attempt resumed at a step with nothing left to train
    # (an earlier attempt reported it, then died); the server takes the value that
    # earlier attempt reported.
    return Outcome(value=value, stopped=reporter.stopped)
