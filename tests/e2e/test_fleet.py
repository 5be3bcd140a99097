"""Fleet mode with real services: PostgreSQL + Redis/RQ + `hpo server` + `hpo worker`
daemons, each a separate process started the way a user starts them.

Covers the fleet issue's tests: a 4-worker x 200-trial study on PostgreSQL with zero
responses >= 500 (3), a server killed and restarted mid-study (4), Redis flushed
mid-study (5), forged jobs that run no code (6), worker-token scopes (7), and workers
killed -9 mid-trial (1).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from hpo.client import Client

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
    """A server process and worker daemons sharing PostgreSQL, Redis and a data dir."""

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
        self.env.pop("HPO_TOKEN", None)
        self.server: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen:
        out = open(self.logs / log, "ab")
        return subprocess.Popen([HPO, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def start_server(self) -> None:
        self.server = self._spawn(
            ["server", "--port", str(self.port), "--workers", "0"], "server.log"
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

    def start_worker(self, slots: int) -> subprocess.Popen:
        proc = self._spawn(
            ["worker", "--gpus", "none", "--slots", str(slots)], f"worker{len(self.workers)}.log"
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

    def log(self, name: str) -> str:
        path = self.logs / name
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()

    def client(self, token: str = USER_TOKEN) -> Client:
        return Client(self.url, token=token)


@pytest.fixture
def fleet(
    postgres_url: str, redis_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Fleet]:
    """Server on PostgreSQL + Redis. Heartbeat timeout: 10 s (a loaded 2-core CI machine
    can starve a heartbeat thread for seconds), short only in tests marked
    ``fast_reaper`` that measure how quickly lost trials come back."""
    timeout = HEARTBEAT_TIMEOUT if request.node.get_closest_marker("fast_reaper") else 10.0
    subprocess.run(
        [HPO, "db", "upgrade"],
        env={**os.environ, "HPO_DATABASE_URL": postgres_url},
        check=True,
        capture_output=True,
    )
    f = Fleet(postgres_url, redis_url, tmp_path, heartbeat_timeout=timeout)
    f.start_server()
    try:
        yield f
    finally:
        f.stop()


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


def _server_errors(fleet: Fleet) -> list[str]:
    """5xx answers in the server's log (uvicorn logs every request at info level)."""
    return [line for line in fleet.log("server.log").splitlines() if '" 5' in line]


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
    assert len(workers) == 4 and all(w.devices == ["cpu"] for w in workers)
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
        # No worker yet: 4 jobs wait in Redis. Flush them away.
        deadline = time.monotonic() + 30
        while client.get_study("flush").counts.get("queued", 0) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        Redis.from_url(redis_url).flushall()
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
    deadline = time.monotonic() + 60
    while redis.llen("rq:queue:hpo-trials") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
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
def test_kill_9_worker_slots_mid_trial_ten_times(fleet: Fleet) -> None:
    rng = random.Random(99)
    max_retries = 4
    fleet.start_worker(slots=2)
    latencies = []
    with fleet.client() as client:
        client.create_study(
            _spec("kills", trials=8, parallel=2, epochs=50, max_retries=max_retries)
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
            pid = int(trial.worker.rsplit(":", 1)[1])
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
        _wait_study(client, "kills", timeout=300)
        trials = _assert_terminal_and_contiguous(client, "kills", 8)
    assert all(t.attempt <= max_retries + 1 for t in trials)
    assert not any(t.status == "running" for t in trials)
    rounded = [round(x, 2) for x in latencies]
    print(f"fleet reaper latency kill->retry: max {max(latencies):.2f}s, all {rounded}")
    # + slack for polling and a loaded 2-core machine
    assert max(latencies) <= HEARTBEAT_TIMEOUT + REAPER_PERIOD + 3.0


def test_sigterm_hands_running_trials_back_and_they_resume_elsewhere(fleet: Fleet) -> None:
    daemon = fleet.start_worker(slots=2)
    with fleet.client() as client:
        client.create_study(_spec("term", trials=2, parallel=2, epochs=60))
        deadline = time.monotonic() + 90
        while True:
            running = client.list_trials("term", status="running")
            if len(running) == 2 and all(client.get_trial_by_id(t.id).reports for t in running):
                break
            assert time.monotonic() < deadline, fleet.log("worker0.log")
            time.sleep(0.2)
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
