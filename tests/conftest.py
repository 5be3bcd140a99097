"""Shared fixtures: a migrated SQLite file database, a real API server on loopback
(uvicorn in a thread, real HTTP), and small valid study specs."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hpo.client import Client
from hpo.embedded import EmbeddedService
from hpo.errors import InvalidRequest
from hpo.settings import Settings

# Real Redis and PostgreSQL servers (tests/service_fixtures.py; tests/ is on pythonpath).
pytest_plugins = ["service_fixtures", "s3_fixtures"]

SMALL_SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    "batch_size": {"type": "categorical", "choices": [32, 64]},
    "units": {"type": "int", "low": 8, "high": 32},
}


@pytest.fixture(autouse=True, scope="session")
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test may touch the user's real data directory or server settings."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HPO_DATA_DIR", str(tmp_path_factory.mktemp("hpo-data")))
    for var in ("HPO_DATABASE_URL", "HPO_REDIS_URL", "HPO_SERVER_URL", "HPO_TOKEN"):
        mp.delenv(var, raising=False)
    yield
    mp.undo()


@pytest.fixture
def make_spec() -> Callable[..., dict[str, Any]]:
    """A valid small study spec; keyword overrides replace top-level sections."""

    def _make(name: str = "s1", **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": name,
            "objective": {"metric": "val_accuracy", "direction": "maximize"},
            "space": copy.deepcopy(SMALL_SPACE),
            "strategy": {"name": "random", "seed": 1},
            "budget": {"max_trials": 4, "max_parallel": 2, "epochs": 2},
            "train": {"model": "mlp", "dataset": "synthetic", "params": {}},
        }
        spec.update(overrides)
        return spec

    return _make


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each API test runs on both supported databases: a SQLite file (the embedded
    default) and a fresh database on a real PostgreSQL server (production)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hpo.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for one test: its own database, a fast scheduler."""
    return Settings(data_dir=tmp_path, database_url=database_url, scheduler_interval=0.05)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings on the embedded default only (for whole-system tests whose database
    side the API tests already cover on both backends)."""
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'hpo.db'}",
        scheduler_interval=0.05,
    )


@pytest.fixture
def live_server(settings: Settings) -> Iterator[EmbeddedService]:
    """The real server over real HTTP on loopback, no workers (trials stay queued
    until a test starts them)."""
    with EmbeddedService(settings, workers=0) as service:
        yield service


@pytest.fixture
def api(live_server: EmbeddedService) -> Iterator[httpx.Client]:
    """Raw HTTP against the live server's /api/v1."""
    with httpx.Client(base_url=f"{live_server.url}/api/v1", timeout=30) as client:
        yield client


@pytest.fixture
def sdk(live_server: EmbeddedService) -> Iterator[Client]:
    with Client(live_server.url) as client:
        yield client


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def wait() -> Callable[..., Any]:
    return wait_until


def close_budget(client: Client, name: str) -> int:
    """Lower a study's ``max_trials`` to the trials created so far, so it completes once
    they end, and return that count. A test that acts on running trials a set number
    of times gives its study more trials than it can finish meanwhile, however fast
    the machine, then closes it this way."""
    for _ in range(100):
        created = client.get_study(name).n_trials
        try:
            client.update_study(name, max_trials=created)
            return created
        except InvalidRequest:
            time.sleep(0.05)  # the scheduler created another trial meanwhile
    pytest.fail(f"study {name}: its budget could not be closed")


@pytest.fixture(name="close_budget")
def close_budget_fixture() -> Callable[[Client, str], int]:
    return close_budget
