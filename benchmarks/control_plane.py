"""Shared harness of the control-plane benchmarks (``throughput``, ``growth``): run N
zero-cost trials through our service or through Optuna, and return when each finished.

Ours, end to end as users run it: a study whose ``train.entrypoint`` is
:func:`zero_cost` goes suggest -> queue -> worker start -> report -> finish -> stored.

* ``embedded``: ``hpo.embedded.EmbeddedService`` on a SQLite file (the default set-up:
  API server, scheduler and ``workers`` local worker processes).
* ``fleet``: the same server on PostgreSQL with Redis/RQ, and one ``hpo worker
  --slots <workers>`` daemon (RQ workers that talk to the server over HTTP).

The peer: Optuna with ``RDBStorage`` on the same kind of database (a SQLite file / a
database on the same PostgreSQL server), ``workers`` processes each running
``study.optimize`` on the same objective (one ``trial.report`` then the value, like
ours), with ``RandomSampler`` against our ``random`` and ``TPESampler`` (Optuna's
model-based default) against our ``bayes``.

Both sides start their processes first and are timed from the moment all of them are
ready (imports and connections are not counted) until the last trial is stored. Trial
completion times come from the stored rows (our ``finished_at``, Optuna's
``datetime_complete``).
"""

from __future__ import annotations

import itertools
import math
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.services import service_pids

__all__ = [
    "SPACE",
    "Run",
    "objective_value",
    "run_optuna",
    "run_ours",
    "service_cpu_seconds",
    "zero_cost",
]

ROOT = Path(__file__).resolve().parents[1]
STUDY = "control-plane"

#: A small mixed space like the ones the service tunes (lr, batch size, decay, width).
SPACE: dict[str, dict[str, Any]] = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64, 128, 256]},
    "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    "units": {"type": "int", "low": 16, "high": 512, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
}
_PEER_SAMPLER = {"random": "RandomSampler", "bayes": "TPESampler"}


def objective_value(params: dict[str, Any]) -> float:
    """A cheap closed-form loss over :data:`SPACE` (the work is nil; only its shape
    matters to model-based strategies)."""
    return (
        (math.log10(params["lr"]) + 2.5) ** 2
        + (math.log2(params["batch_size"]) - 6) ** 2 / 4
        + (math.log10(params["weight_decay"]) + 4) ** 2 / 8
        + (math.log2(params["units"]) - 7) ** 2 / 8
        + (params["dropout"] - 0.2) ** 2
    )


def zero_cost(params: dict[str, Any], reporter: Any) -> dict[str, float]:
    """The benchmark's training function: one report, then the value."""
    value = objective_value(params)
    reporter.report(1, loss=value)
    return {"loss": value}


@dataclass
class Run:
    """One side's result: trial completion times (seconds since the start, sorted)."""

    label: str
    trials: int
    started: float  # wall clock (time.time()) when all processes were ready
    finished: list[float]
    #: CPU seconds used while timed by our server process (NaN for the peer, which has
    #: none), by the processes that run trials (ours: the worker processes; the peer:
    #: its ``study.optimize`` processes) and by the throw-away database and queue
    #: servers (NaN on SQLite, which runs in-process, and for servers given by URL).
    #: NaN where /proc is not readable.
    server_cpu: float = float("nan")
    worker_cpu: float = float("nan")
    service_cpu: float = float("nan")
    #: (seconds since the start, server CPU seconds so far, workers' CPU seconds so
    #: far) read while the run went on (the peer's server part is 0: its processes are
    #: its workers). Empty where /proc is not readable.
    cpu_samples: list[tuple[float, float, float]] = field(default_factory=list)

    def cpu_ms(self, seconds: float) -> float:
        """CPU milliseconds per completed trial."""
        return 1000 * seconds / max(len(self.finished), 1)

    @property
    def seconds(self) -> float:
        return self.finished[-1] if self.finished else float("nan")

    @property
    def rate(self) -> float:
        """Completed trials per second over the whole run."""
        return len(self.finished) / self.seconds if self.finished else float("nan")

    def window_rate(self, first: bool, share: float = 0.1) -> float:
        """Trials per second over the first (or last) ``share`` of the trials."""
        k = max(1, int(len(self.finished) * share))
        times = [0.0, *self.finished]
        if first:
            return k / max(times[k], 1e-9)
        return k / max(times[-1] - times[-1 - k], 1e-9)

    def window_cpu_ms(self, first: bool, share: float = 0.1, role: str = "all") -> float:
        """CPU milliseconds per trial over the first (or last) ``share`` of the trials,
        of the ``role`` (``server``, ``workers`` or ``all``), the CPU at each end of the
        window interpolated between ``cpu_samples``. NaN without samples.

        CPU per trial moves less with other load on the machine than a rate does, but
        on a shared machine it still moves (the same work costs more CPU time while
        other processes crowd the caches): the workers' share, the same work on every
        trial, is the yardstick for that."""
        if len(self.cpu_samples) < 2 or not self.finished:
            return float("nan")
        k = max(1, int(len(self.finished) * share))
        times = [0.0, *self.finished]
        lo, hi = (times[0], times[k]) if first else (times[-1 - k], times[-1])
        columns = {"server": (1,), "workers": (2,), "all": (1, 2)}[role]
        used = sum(_cpu_at(self.cpu_samples, hi, c) - _cpu_at(self.cpu_samples, lo, c)
                   for c in columns)  # fmt: skip
        return 1000 * used / k


def _cpu_at(samples: list[tuple[float, float, float]], moment: float, column: int) -> float:
    """CPU seconds in ``column`` at ``moment``, linear between the samples around it
    (clamped to the first and last)."""
    if moment <= samples[0][0]:
        return samples[0][column]
    for before, after in itertools.pairwise(samples):
        if moment <= after[0]:
            share = (moment - before[0]) / max(after[0] - before[0], 1e-9)
            return before[column] + (after[column] - before[column]) * share
    return samples[-1][column]


def _spec(strategy: str, trials: int, workers: int) -> dict[str, Any]:
    return {
        "name": STUDY,
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": SPACE,
        "strategy": {"name": strategy, "seed": 1},
        "budget": {"max_trials": trials, "max_parallel": workers, "epochs": 1},
        "train": {"entrypoint": "benchmarks.control_plane:zero_cost"},
    }


def _seconds(moments: list[datetime | None], start: float) -> list[float]:
    return sorted(m.timestamp() - start for m in moments if m is not None)


def run_ours(
    backend: str,
    strategies: list[str],
    trials: int,
    workers: int,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    poll: float = 0.2,
) -> list[Run]:
    """Run one study per strategy, one after the other, on one service of ours
    (``backend`` ``embedded`` or ``fleet``); a run per strategy."""
    from hpo.client import Client
    from hpo.embedded import EmbeddedService
    from hpo.settings import Settings

    runs = []
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as root:
        url = database_url or f"sqlite:///{root}/hpo.db"
        settings = Settings(
            data_dir=Path(root),
            database_url=url,
            redis_url=redis_url if backend == "fleet" else None,
            artifact_dir=Path(root) / "artifacts",
            auth="off",
        )
        daemon = None
        with EmbeddedService(settings, workers=workers) as service:
            client = Client(service.url, token=None)
            try:
                if backend == "fleet":
                    daemon = _start_daemon(service.url, redis_url or "", workers, root)
                deadline = time.monotonic() + 120
                # a local worker registers one device; a daemon, once, all its slots
                while sum(len(w.devices) for w in client.list_workers()) < workers:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{workers} workers did not register in 120 s")
                    time.sleep(0.1)
                pids = _worker_pids(service, daemon)
                for strategy in strategies:
                    runs.append(_one_study(client, strategy, trials, workers, pids, poll))
            finally:
                if daemon is not None:
                    daemon.terminate()
                    daemon.wait(30)
                client.close()
    return runs


def _one_study(
    client: Any, strategy: str, trials: int, workers: int, pids: list[int], poll: float
) -> Run:
    spec = _spec(strategy, trials, workers)
    name = spec["name"] = f"{STUDY}-{strategy}"
    cpu0 = _cpu_seconds([os.getpid()]), _cpu_seconds(pids), service_cpu_seconds()
    start = time.time()
    samples = [(0.0, 0.0, 0.0)]
    client.create_study(spec)
    while client.get_study(name).status == "running":
        time.sleep(poll)
        server, workers = _cpu_seconds([os.getpid()]), _cpu_seconds(pids)
        samples.append((time.time() - start, server - cpu0[0], workers - cpu0[1]))
    cpu1 = _cpu_seconds([os.getpid()]), _cpu_seconds(pids), service_cpu_seconds()
    samples.append((time.time() - start, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]))
    done = [r.finished_at for r in client.all_trials(name) if r.status == "completed"]
    return Run(
        f"ours ({strategy})",
        trials,
        start,
        _seconds(done, start),
        server_cpu=cpu1[0] - cpu0[0],
        worker_cpu=cpu1[1] - cpu0[1],
        service_cpu=cpu1[2] - cpu0[2],
        cpu_samples=[x for x in samples if not math.isnan(x[1] + x[2])],
    )


def _worker_pids(service: Any, daemon: Any) -> list[int]:
    """The processes that run trials: the local executor's, or the daemon's slots."""
    if daemon is None:
        return list(service.executor.pids()) if service.executor else []
    try:
        text = Path(f"/proc/{daemon.pid}/task/{daemon.pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3 onward:
    ``[1]`` the parent, ``[11]``/``[12]`` user/system ticks, ``[13]``/``[14]`` those of
    reaped children); None when it cannot be read (ended, or no /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _seconds_of(fields: list[str], with_children: bool = False) -> float:
    """User + system CPU seconds in ``_stat`` fields (and reaped children's)."""
    used = (11, 12, 13, 14) if with_children else (11, 12)
    return sum(int(fields[i]) for i in used) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far (Linux /proc; NaN elsewhere)."""
    total = 0.0
    for pid in pids:
        fields = _stat(pid)
        if fields is None:
            return float("nan")
        total += _seconds_of(fields)
    return total


def service_cpu_seconds() -> float:
    """User + system CPU seconds the throw-away PostgreSQL and Redis servers of this run
    (``benchmarks.services``) have used so far: each main process, its live children (a
    connection's backend) and its ended children (counted in its children's time once
    reaped). NaN when none runs (SQLite; servers given by URL) or without /proc."""
    roots = set(service_pids())
    if not roots:
        return float("nan")
    try:
        entries = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return float("nan")
    total = 0.0
    for pid in entries:
        fields = _stat(pid)
        if fields is None:  # ended meanwhile
            continue
        if pid in roots:
            total += _seconds_of(fields, with_children=True)
        elif int(fields[1]) in roots:
            total += _seconds_of(fields)
    return total


def _start_daemon(server_url: str, redis_url: str, workers: int, root: str):  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "HPO_SERVER_URL": server_url,
        "HPO_REDIS_URL": redis_url,
        "HPO_ARTIFACT_DIR": str(Path(root) / "artifacts"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hpo.cli.main", "worker", "--slots", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _optuna_process(url: str, name: str, sampler: str, n_trials: int, ready: Any, go: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kind = getattr(optuna.samplers, sampler)
    study = optuna.load_study(study_name=name, storage=url, sampler=kind())
    ready.release()
    go.wait()

    def objective(trial: Any) -> float:
        params = {
            "lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64, 128, 256]),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "units": trial.suggest_int("units", 16, 512, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        }
        value = objective_value(params)
        trial.report(value, 1)
        return value

    study.optimize(objective, n_trials=n_trials)


def run_optuna(strategy: str, trials: int, workers: int, url: str) -> Run:
    """Run the same trials with Optuna's RDBStorage at ``url`` in ``workers`` processes."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = _PEER_SAMPLER[strategy]
    name = f"{STUDY}-{strategy}"
    optuna.create_study(study_name=name, storage=url, direction="minimize")
    ctx = mp.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    shares = [trials // workers + (i < trials % workers) for i in range(workers)]
    procs = [
        ctx.Process(target=_optuna_process, args=(url, name, sampler, n, ready, go)) for n in shares
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    # their set-up so far (imports, connections) is not counted: read while they live
    children0 = _children_cpu_seconds() + _cpu_seconds([p.pid for p in procs if p.pid])
    services0 = service_cpu_seconds()
    start = time.time()
    go.set()
    samples = [(0.0, 0.0, 0.0)]
    pids = [p.pid for p in procs if p.pid]
    # Wait on the sentinels, which does not reap: an ended process stays readable in
    # /proc (a zombie, its CPU times kept) until the joins below.
    pending = [p.sentinel for p in procs]
    while pending:
        ended = mp_connection.wait(pending, 0.2)
        pending = [s for s in pending if s not in ended]
        used = _children_cpu_seconds() + _cpu_seconds(pids) - children0
        samples.append((time.time() - start, 0.0, used))
    for proc in procs:
        proc.join()
    # joined (reaped): all their CPU is in our children's time now
    children1, services1 = _children_cpu_seconds(), service_cpu_seconds()
    study = optuna.load_study(study_name=name, storage=url)
    done = [t.datetime_complete for t in study.get_trials(deepcopy=False)]
    # Optuna stores naive local times.
    return Run(
        f"optuna ({sampler})",
        trials,
        start,
        _seconds(done, start),
        worker_cpu=children1 - children0,
        service_cpu=services1 - services0,
        cpu_samples=[
            *(x for x in samples if not math.isnan(x[2])),
            (time.time() - start, 0.0, children1 - children0),
        ],
    )


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
