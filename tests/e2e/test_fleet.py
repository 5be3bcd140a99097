"""Fleet mode with real services: PostgreSQL + Redis/RQ + `hpo server` + `hpo worker`
daemons, each a separate process started the way a user starts them.

Covers the fleet issue's tests: a 4-worker x 200-trial study on PostgreSQL with zero
responses >= 500 (3), a server killed and restarted mid-study (4), Redis flushed
mid-study (5), forged jobs that run no code (6), worker-token scopes (7), and workers
killed -9 mid-trial (1).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from redis import Redis

from hpo.client import Client

if TYPE_CHECKING:  # a pytest plugin: importing it first defeats assert rewriting
    from service_fixtures import PostgresServer, RedisServer

pytestmark = pytest.mark.e2e
HPO = str(Path(sys.executable).parent / "hpo")
USER_TOKEN = "user-secret-token"
WORKER_TOKEN = "worker-secret-token"
HEARTBEAT_TIMEOUT = 2.0
REAPER_PERIOD = 0.5


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Fleet:
    """A server process and worker daemons sharing PostgreSQL, Redis and a data dir.

    One fleet may serve several tests in turn (:meth:`begin_test` / :meth:`end_test`):
    each test starts its own workers, logging into its own folder, and sees only its
    own part of the server's log; its studies have names of their own.
    """

    def __init__(
        self,
        database_url: str,
        redis_url: str,
        data_dir: Path,
        heartbeat_timeout: float = 10.0,
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = data_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.worker_logs = self.logs
        self._server_log_from = 0  # where the current test's part of server.log starts
        self.env = {
            **os.environ,
            "HPO_DATABASE_URL": database_url,
            "HPO_REDIS_URL": redis_url,
            "HPO_DATA_DIR": str(data_dir),
            "HPO_SERVER_URL": self.url,
            "HPO_API_TOKEN": USER_TOKEN,
            "HPO_WORKER_TOKEN": WORKER_TOKEN,
            "HPO_HEARTBEAT_INTERVAL": "0.3",
            "HPO_HEARTBEAT_TIMEOUT": str(heartbeat_timeout),
            "HPO_RECONCILE_INTERVAL": str(REAPER_PERIOD),
            "HPO_SCHEDULER_INTERVAL": "0.1",
        }
        # The daemon splits the cores between its CPU slots (OMP_NUM_THREADS unless
        # set): a value inherited from the caller would bypass what these tests run.
        self.env.pop("OMP_NUM_THREADS", None)
        self.env.pop("HPO_TOKEN", None)
        self.server: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen:
        out = open(log, "ab")
        return subprocess.Popen([HPO, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def start_server(self) -> None:
        self.server = self._spawn(
            ["server", "--port", str(self.port), "--workers", "0"], self.logs / "server.log"
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.server.poll() is None, self.log("server.log")
            time.sleep(0.1)
        raise AssertionError("server did not start: " + self.log("server.log"))

    def kill_server(self) -> None:
        assert self.server is not None
        self.server.kill()
        self.server.wait(10)

    def start_worker(
        self,
        slots: int = 1,
        pool: str | None = None,
        *,
        gpus: str = "none",
        trainables: Path | None = None,
    ) -> subprocess.Popen:
        """A daemon with ``slots`` CPU slots, or the GPU ids ``gpus`` (on a machine
        without CUDA they are names only: each trial's ``CUDA_VISIBLE_DEVICES`` shows
        where it was placed). ``trainables``: a folder put on its ``PYTHONPATH`` (for
        ``helpers.trainables`` entrypoints)."""
        args = ["worker", "--gpus", gpus] + (["--slots", str(slots)] if gpus == "none" else [])
        env = dict(self.env)
        if trainables is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(trainables), env.get("PYTHONPATH")])
            )
        log = open(self.worker_logs / f"worker{len(self.workers)}.log", "ab")
        proc = subprocess.Popen(
            [HPO, *args, *(["--pool", pool] if pool else [])],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        return proc

    def slot_pids(self) -> list[int]:
        """Slot processes (children of the worker daemons)."""
        pids = []
        for daemon in self.workers:
            children = Path(f"/proc/{daemon.pid}/task/{daemon.pid}/children")
            if children.exists():
                pids += [int(p) for p in children.read_text().split()]
        return pids

    def log(self, name: str, tail: int | None = 4000) -> str:
        """The last ``tail`` characters (None: all) of a log the current test wrote to
        (its part of server.log)."""
        if name == "server.log":
            path, start = self.logs / name, self._server_log_from
        else:
            path, start = self.worker_logs / name, 0
        if not path.exists():
            return ""
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
        return text if tail is None else text[-tail:]

    def begin_test(self, logs: Path) -> None:
        """Hand the fleet to a test: no workers yet, worker logs into ``logs``, a
        running server (restarted if an earlier test left it dead)."""
        self.workers = []
        self.worker_logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        if self.server is None or self.server.poll() is not None:
            self.start_server()
        path = self.logs / "server.log"
        self._server_log_from = path.stat().st_size if path.exists() else 0

    def end_test(self) -> None:
        """Take the fleet back from a test: its workers stop (warmly, handing back what
        they run) and any study it left running is stopped, so nothing of it runs on
        into the next test."""
        self.stop_workers()
        if self.server is None or self.server.poll() is not None:
            return
        with self.client() as client:
            for study in client.list_studies():
                if study.status in ("running", "paused"):
                    client.stop_study(study.name)

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def stop(self) -> None:
        self.stop_workers()
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()

    def client(self, token: str = USER_TOKEN) -> Client:
        return Client(self.url, token=token)


@pytest.fixture(scope="module")
def migrated_template(postgres_server: PostgresServer) -> Iterator[str]:
    """A database migrated by ``hpo db upgrade`` (the CLI, as a user runs it), once per
    module: the name of the template every test's own database is copied from."""
    name = f"fleet_template_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    try:
        subprocess.run(
            [HPO, "db", "upgrade"],
            env={**os.environ, "HPO_DATABASE_URL": url},
            check=True,
            capture_output=True,
        )
        yield name
    finally:
        postgres_server.drop_database(name)


@contextlib.contextmanager
def _fleet(
    postgres_server: PostgresServer,
    template: str,
    redis_url: str,
    data_dir: Path,
    heartbeat_timeout: float,
) -> Iterator[Fleet]:
    """A started fleet server on its own freshly migrated database: a copy of the
    migrated template (a file copy on the server, where running the CLI again would
    take seconds); stopped, and its database dropped, at the end."""
    name = f"test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name, template=template)
    try:
        f = Fleet(url, redis_url, data_dir, heartbeat_timeout=heartbeat_timeout)
        try:
            f.start_server()
            yield f
        finally:
            f.stop()
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(scope="module")
def shared_fleet(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    migrated_template: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    """One server for the module's tests that do not need a fast reaper (its start-up
    costs seconds a test); each test has studies of its own and its own workers."""
    with _fleet(
        postgres_server,
        migrated_template,
        redis_server.url,
        tmp_path_factory.mktemp("fleet"),
        heartbeat_timeout=10.0,
    ) as f:
        yield f


@pytest.fixture
def fleet(redis_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    """Server on PostgreSQL + Redis (Redis emptied for each test). Heartbeat timeout:
    10 s (a loaded 2-core CI machine can starve a heartbeat thread for seconds), short
    only in tests marked ``fast_reaper`` that measure how quickly lost trials come back:
    those get a server of their own."""
    if request.node.get_closest_marker("fast_reaper"):
        # Its own Redis database too: the shared server (idle) watches database 0's queue.
        with _fleet(
            request.getfixturevalue("postgres_server"),
            request.getfixturevalue("migrated_template"),
            redis_url.rsplit("/", 1)[0] + "/1",
            tmp_path,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
        ) as f:
            f.begin_test(tmp_path / "logs")
            yield f
        return
    f = request.getfixturevalue("shared_fleet")
    f.begin_test(tmp_path / "logs")
    try:
        yield f
    finally:
        f.end_test()


def _spec(name: str, trials: int, parallel: int, epochs: int, **budget) -> dict:
    return {
        "name": name,
        "space": {"lr": {"type": "float", "low": 0.005, "high": 0.02, "log": True}},
        "budget": {"max_trials": trials, "max_parallel": parallel, "epochs": epochs, **budget},
        "train": {"model": "mlp", "dataset": "synthetic", "params": {"batch_size": 32}},
    }


def _wait_study(client: Client, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get_study(name).status == "completed":
            return
        time.sleep(0.3)
    raise AssertionError(f"study {name} did not complete: {client.get_study(name).counts}")


def _assert_terminal_and_contiguous(client: Client, name: str, n: int) -> list:
    trials = client.all_trials(name)
    assert sorted(t.number for t in trials) == list(range(n))
    assert {t.status for t in trials} <= {"completed", "failed", "pruned"}
    return trials


#: What the server's log holds for a 500 answer: the server runs without an access log
#: (``hpo server``: a log line per request cost real throughput), but an exception no
#: handler turned into an answer is what makes one, and uvicorn logs each at ERROR with
#: its traceback (checked by hand with a route that raises).
_SERVER_FAULTS = ("Exception in ASGI application", "Traceback (most recent call last)")


def _server_errors(fleet: Fleet) -> list[str]:
    """Unhandled errors (500 answers) in the current test's part of the server's log."""
    lines = fleet.log("server.log", tail=None).splitlines()
    return [line for line in lines if any(fault in line for fault in _SERVER_FAULTS)]


def _worker_retries(fleet: Fleet) -> list[str]:
    """Calls the workers had to retry (a 5xx or 429 answer, or no answer: see
    ``worker.lease.retrying``), from the current test's worker logs."""
    found = []
    for path in sorted(fleet.worker_logs.glob("*.log")):
        text = fleet.log(path.name, tail=None)
        found += [line for line in text.splitlines() if "server call failed" in line]
    return found


def test_four_workers_two_hundred_trials_on_postgresql(fleet: Fleet) -> None:
    fleet.start_worker(slots=2)
    fleet.start_worker(slots=2)
    with fleet.client() as client:
        client.create_study(_spec("big", trials=200, parallel=8, epochs=1))
        started = time.monotonic()
        _wait_study(client, "big", timeout=400)
        elapsed = time.monotonic() - started
        trials = _assert_terminal_and_contiguous(client, "big", 200)
        assert {t.status for t in trials} == {"completed"}
        workers = client.list_workers()
    print(f"fleet throughput: 200 trials in {elapsed:.1f}s = {200 / elapsed:.2f} trials/s")
    assert len({t.worker for t in trials}) == 4  # all four slots took trials
    # two daemons, each registered once with its two CPU slots
    assert len(workers) == 2 and all(w.devices == ["cpu0", "cpu1"] for w in workers)
    assert _server_errors(fleet) == []
    assert _worker_retries(fleet) == []  # no 5xx answer, and the server never went away


def test_each_pool_runs_only_its_own_studies_trials(fleet: Fleet) -> None:
    fleet.start_worker(slots=1, pool="alpha")
    fleet.start_worker(slots=1)
    with fleet.client() as client:
        client.create_study({**_spec("in-alpha", 6, 2, 1), "resources": {"pool": "alpha"}})
        client.create_study(_spec("in-default", 6, 2, 1))
        _wait_study(client, "in-alpha", timeout=120)
        _wait_study(client, "in-default", timeout=120)
        pool_of = {w.name: w.pool for w in client.list_workers(include_stopped=True)}
        ran = {
            name: {
                # a trial runs in a runner of its daemon, named <daemon>/<pid>
                pool_of.get(str(t.worker).split("/")[0])
                for t in _assert_terminal_and_contiguous(client, name, 6)
            }
            for name in ("in-alpha", "in-default")
        }
    assert ran == {"in-alpha": {"alpha"}, "in-default": {"default"}}
    assert _server_errors(fleet) == []


def test_server_killed_and_restarted_mid_study_loses_nothing(fleet: Fleet) -> None:
    fleet.start_worker(slots=2)
    with fleet.client() as client:
        client.create_study(_spec("restart", trials=16, parallel=2, epochs=8))
        deadline = time.monotonic() + 120
        while sum(client.get_study("restart").counts.get(s, 0) for s in ("completed",)) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        before = {t.number: (t.status, t.value) for t in client.all_trials("restart")}
        reports_before = {
            t.number: [
                (r.attempt, r.step, r.value) for r in client.get_trial("restart", t.number).reports
            ]
            for t in client.all_trials("restart")
            if t.status == "completed"
        }
    fleet.kill_server()
    time.sleep(1.5)  # workers keep training and buffer their reports meanwhile
    fleet.start_server()
    with fleet.client() as client:
        _wait_study(client, "restart", timeout=240)
        trials = _assert_terminal_and_contiguous(client, "restart", 16)
        after = {t.number: (t.status, t.value) for t in trials}
        for number, (status, value) in before.items():
            if status == "completed":
                assert after[number] == (status, value)
                reports = [
                    (r.attempt, r.step, r.value)
                    for r in client.get_trial("restart", number).reports
                ]
                assert reports == reports_before[number]
        assert all(len(client.get_trial("restart", t.number).reports) >= 1 for t in trials)


def test_flushall_mid_study_is_reconciled_without_duplicate_runs(
    fleet: Fleet, redis_url: str
) -> None:
    with fleet.client() as client:
        client.create_study(_spec("flush", trials=12, parallel=4, epochs=3))
        # No worker yet: 4 jobs wait in Redis. Flush them away. (Both counts: the rows
        # are committed before their jobs are pushed, and a flush that beat the push
        # would leave nothing for the reconciler to restore.)
        redis = Redis.from_url(redis_url)
        deadline = time.monotonic() + 30
        while (
            client.get_study("flush").counts.get("queued", 0) < 4
            or redis.llen("rq:queue:hpo-trials") < 4
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        redis.flushall()
        fleet.start_worker(slots=2)
        _wait_study(client, "flush", timeout=240)
        trials = _assert_terminal_and_contiguous(client, "flush", 12)
    assert {t.status for t in trials} == {"completed"}
    assert all(t.attempt == 1 for t in trials)  # each trial ran exactly once
    assert "re-enqueueing" in fleet.log("server.log")


def test_forged_jobs_run_no_code(fleet: Fleet, redis_url: str, tmp_path: Path) -> None:
    import pickle
    import zlib

    marker = tmp_path / "pwned"
    redis = Redis.from_url(redis_url)
    forged = {
        "pickled": zlib.compress(pickle.dumps(("os.system", None, (f"touch {marker}",), {}))),
        "json-os-system": zlib.compress(
            json.dumps(["os.system", None, [f"touch {marker}"], {}]).encode()
        ),
        "json-callback": zlib.compress(
            json.dumps(["worker.job.run_trial", None, [1], {}]).encode()
        ),
    }
    now = "2026-01-01T00:00:00.000000Z"
    for job_id, data in forged.items():
        fields = {
            "data": data,
            "status": "queued",
            "created_at": now,
            "enqueued_at": now,
            "origin": "hpo-trials",
            "description": "forged",
            "timeout": 60,
        }
        if job_id == "json-callback":
            fields["success_callback_name"] = "os.system"
            fields["failure_callback_name"] = "os.system"
        redis.hset(f"rq:job:{job_id}", mapping=fields)
        redis.rpush("rq:queue:hpo-trials", job_id)
    redis.sadd("rq:queues", "rq:queue:hpo-trials")
    fleet.start_worker(slots=1)

    def handled() -> bool:
        """Every forged job taken off the queue and done with: RQ stores a job's end
        (failed or finished) only after running it and any callback it resolved."""
        statuses = [redis.hget(f"rq:job:{job_id}", "status") for job_id in forged]
        return not redis.llen("rq:queue:hpo-trials") and all(
            status not in (b"queued", b"started") for status in statuses
        )

    deadline = time.monotonic() + 60
    while not handled() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert handled()
    assert redis.llen("rq:queue:hpo-trials") == 0
    assert not marker.exists()
    assert all(proc.poll() is None for proc in fleet.workers)  # the daemon survived them


def test_worker_token_scopes(fleet: Fleet) -> None:
    spec = _spec("auth", trials=1, parallel=1, epochs=1)
    base = f"{fleet.url}/api/v1"
    no_token = httpx.post(f"{base}/studies", json=spec)
    assert no_token.status_code == 401
    wrong = httpx.post(f"{base}/studies", json=spec, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    as_worker = httpx.post(
        f"{base}/studies", json=spec, headers={"Authorization": f"Bearer {WORKER_TOKEN}"}
    )
    assert as_worker.status_code == 403
    assert (
        httpx.get(
            f"{base}/studies", headers={"Authorization": f"Bearer {WORKER_TOKEN}"}
        ).status_code
        == 403
    )
    as_user = httpx.post(
        f"{base}/studies", json=spec, headers={"Authorization": f"Bearer {USER_TOKEN}"}
    )
    assert as_user.status_code == 201
    assert httpx.get(f"{fleet.url}/healthz").status_code == 200  # liveness stays open
    # the worker token may run trials
    with fleet.client() as client:
        trial = client.all_trials("auth")[0] if client.all_trials("auth") else None
        deadline = time.monotonic() + 20
        while trial is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
            trials = client.all_trials("auth")
            trial = trials[0] if trials else None
    started = httpx.post(
        f"{base}/trials/{trial.id}/start",
        json={},
        headers={"Authorization": f"Bearer {WORKER_TOKEN}"},
    )
    assert started.status_code == 200
    assert httpx.post(f"{base}/trials/{trial.id}/start", json={}).status_code == 401


@pytest.mark.fast_reaper
def test_kill_9_worker_slots_mid_trial_ten_times(fleet: Fleet, close_budget) -> None:
    rng = random.Random(99)
    max_retries = 4
    fleet.start_worker(slots=2)
    latencies = []
    with fleet.client() as client:
        # 150 epochs: an attempt runs ~6 s on a 2-core machine, long enough to be killed
        # mid-trial (a kill lands at most ~1.5 s after the trial is seen running). More
        # trials than run during ten kills, however fast the machine; the budget is
        # closed after the last kill.
        client.create_study(
            _spec("kills", trials=60, parallel=2, epochs=150, max_retries=max_retries)
        )
        for _ in range(10):
            deadline = time.monotonic() + 90
            while True:
                running = {
                    t.id: t for t in client.list_trials("kills", status="running") if t.worker
                }
                if running:
                    break
                assert time.monotonic() < deadline, fleet.log("worker0.log")
                time.sleep(0.1)
            time.sleep(rng.uniform(0.1, 1.5))
            running = {
                t.id: t for t in client.list_trials("kills", status="running") if t.worker
            } or running
            trial = running[rng.choice(sorted(running))]
            pid = int(trial.worker.rsplit("/", 1)[-1])  # <daemon>/<runner pid>
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed = time.monotonic()
            while True:
                now = client.get_trial_by_id(trial.id)
                if now.status != "running" or now.worker != trial.worker:
                    break
                assert time.monotonic() - killed < 30
                time.sleep(0.05)
            latencies.append(time.monotonic() - killed)
        created = close_budget(client, "kills")
        _wait_study(client, "kills", timeout=300)
        trials = _assert_terminal_and_contiguous(client, "kills", created)
    assert all(t.attempt <= max_retries + 1 for t in trials)
    assert not any(t.status == "running" for t in trials)
    rounded = [round(x, 2) for x in latencies]
    print(f"fleet reaper latency kill->retry: max {max(latencies):.2f}s, all {rounded}")
    # + slack for polling and a loaded 2-core machine
    assert max(latencies) <= HEARTBEAT_TIMEOUT + REAPER_PERIOD + 3.0


def _wait_both_reporting(fleet: Fleet, client: Client, name: str) -> None:
    """Until two trials of ``name`` run and each has reported (mid-training)."""
    deadline = time.monotonic() + 90
    while True:
        running = client.list_trials(name, status="running")
        if len(running) == 2 and all(client.get_trial_by_id(t.id).reports for t in running):
            return
        assert time.monotonic() < deadline, fleet.log("worker0.log")
        time.sleep(0.2)


def test_sigterm_hands_running_trials_back_and_they_resume_elsewhere(fleet: Fleet) -> None:
    daemon = fleet.start_worker(slots=2)
    with fleet.client() as client:
        # 250 epochs: ~9 s a trial on a 2-core machine, so both are still mid-training
        # when their first reports show (held back up to 2 s) and SIGTERM goes out
        client.create_study(_spec("term", trials=2, parallel=2, epochs=250))
        _wait_both_reporting(fleet, client, "term")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0  # left warmly, after handing its trials back
        handed = client.all_trials("term")
        assert {t.status for t in handed} == {"queued"}
        assert all(t.failures == 0 and "handed back" in t.error for t in handed)
        fleet.start_worker(slots=2)
        _wait_study(client, "term", timeout=240)
        for t in client.all_trials("term"):
            detail = client.get_trial_by_id(t.id)
            assert detail.status == "completed" and detail.attempt == 2
            first = [r.step for r in detail.reports if r.attempt == 1]
            second = [r.step for r in detail.reports if r.attempt == 2]
            assert min(second) == max(first) + 1  # resumed from the checkpoint


def _trainables(tmp_path: Path) -> Path:
    """A folder holding only ``helpers`` (tests/helpers): on a worker's PYTHONPATH it
    adds the test entrypoints without tests/'s own hpo, server, ... folders."""
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    link = shim / "helpers"
    if not link.exists():
        link.symlink_to(Path(__file__).resolve().parents[1] / "helpers")
    return shim


def _most_at_once(spans: list[tuple[float, float, float]]) -> float:
    """The largest sum of weights of spans (start, end, weight) open at one instant."""
    events = sorted([(a, w) for a, _, w in spans] + [(b, -w) for _, b, w in spans])
    most = now = 0.0
    for _, delta in events:
        now += delta
        most = max(most, now)
    return most


def test_trials_of_any_size_share_a_machine_and_never_oversubscribe_it(
    fleet: Fleet, tmp_path: Path
) -> None:
    """One daemon with 4 (named) GPUs runs a study of 2-GPU trials beside one of
    quarter-GPU trials: every trial sees exactly its devices, quarters pack four to a
    GPU, and no GPU ever holds more than one GPU's worth of trials."""
    record = tmp_path / "placed.txt"
    headers = {"Authorization": f"Bearer {USER_TOKEN}"}
    made = httpx.post(
        f"{fleet.url}/api/v1/projects",
        json={"name": "sizes", "entrypoints": ["helpers"]},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    fleet.start_worker(pool="sizes", gpus="0,1,2,3", trainables=_trainables(tmp_path))

    def spec(name: str, gpus: float, trials: int) -> dict:
        return {
            "name": name,
            "project": "sizes",
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "objective": {"metric": "score", "direction": "maximize"},
            "budget": {"max_trials": trials, "max_parallel": trials, "epochs": 1},
            "resources": {"pool": "sizes", "gpus": gpus},
            "train": {
                "entrypoint": "helpers.trainables:placement",
                "params": {"record": str(record), "pause": 4.0, "gpus": gpus},
            },
        }

    with fleet.client() as client:
        deadline = time.monotonic() + 60
        while not any(w.pool == "sizes" for w in client.list_workers()):
            assert time.monotonic() < deadline, fleet.log("worker0.log")
            time.sleep(0.2)
        too_big = httpx.post(
            f"{fleet.url}/api/v1/studies", json=spec("huge", 8, 1), headers=headers
        )
        assert too_big.status_code == 422 and "resources.gpus" in too_big.text
        assert "4 GPUs" in too_big.text
        client.create_study(spec("pairs", 2, 4))
        client.create_study(spec("quarters", 0.25, 8))
        _wait_study(client, "pairs", timeout=180)
        _wait_study(client, "quarters", timeout=180)
        for name in ("pairs", "quarters"):
            assert {t.status for t in client.all_trials(name)} == {"completed"}
    rows = [line.split() for line in record.read_text().splitlines()]
    assert len(rows) == 12
    per_gpu: dict[str, list[tuple[float, float, float]]] = {}
    for start, end, visible, gpus in rows:
        devices = visible.split(",")
        assert len(devices) == max(1, int(float(gpus)))  # exactly its own devices
        assert set(devices) <= {"0", "1", "2", "3"}
        share = min(1.0, float(gpus))
        for device in devices:
            per_gpu.setdefault(device, []).append((float(start), float(end), share))
    # never more than one GPU's worth on a GPU; quarters did share one
    assert all(_most_at_once(spans) <= 1.0 + 1e-9 for spans in per_gpu.values())
    quarters = [(float(a), float(b), 1.0) for a, b, _, g in rows if float(g) < 1]
    assert _most_at_once(quarters) >= 2


def test_a_preempting_study_gets_its_share_and_the_trials_handed_back_resume(
    fleet: Fleet,
) -> None:
    fleet.start_worker(slots=2)
    with fleet.client() as client:
        # 250 epochs: ~9 s a trial on a 2-core machine; the pool (2 slots) is full
        client.create_study(_spec("low", trials=4, parallel=2, epochs=250))
        _wait_both_reporting(fleet, client, "low")
        asked_at = time.monotonic()
        high = {**_spec("high", trials=2, parallel=2, epochs=2), "priority": 5, "preempt": True}
        client.create_study(high)
        _wait_study(client, "high", timeout=120)
        high_done = time.monotonic() - asked_at
        _wait_study(client, "low", timeout=300)
        low = [client.get_trial_by_id(t.id) for t in client.all_trials("low")]
    handed = [t for t in low if t.handbacks]
    # high's share of the 2 slots is one at a time: a low trial is handed back for each
    # of its trials that finds low holding both slots, never more
    assert 1 <= sum(t.handbacks for t in low) <= 2, [(t.number, t.handbacks) for t in low]
    for t in low:
        assert t.status == "completed" and t.failures == 0
    for trial in handed:  # each resumed from the checkpoint it handed back at
        attempts = sorted({r.attempt for r in trial.reports})
        assert len(attempts) == trial.handbacks + 1
        for before, after in itertools.pairwise(attempts):
            last = max(r.step for r in trial.reports if r.attempt == before)
            assert min(r.step for r in trial.reports if r.attempt == after) == last + 1
    # high did not wait for low's trials to end (each runs ~9 s, four of them)
    print(f"hand-back: high completed {high_done:.1f} s after it was created")
    assert _server_errors(fleet) == []
