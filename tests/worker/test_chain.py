"""Chained trials: with ``chain`` a worker's finish takes the study's next trial at once
(leased with the finish) and runs it too; an RQ job chains only while a next trial, given
its whole timeout, still ends inside the job's own timeout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from redis import Redis
from rq.serializers import JSONSerializer

from hpo.client import Client
from hpo.embedded import EmbeddedService
from hpo.jobs import RUN_TRIAL
from hpo.settings import Settings
from worker.job import run_trial, worker_name
from worker.rq_worker import CHAIN_SPARE, TrialJob

ZERO_COST = "benchmarks.control_plane:zero_cost"


@pytest.fixture
def sdk(sqlite_settings: Settings, tmp_path: Path, monkeypatch) -> Iterator[Client]:
    """A live server, no workers: the test runs the trials."""
    monkeypatch.setenv("HPO_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    with EmbeddedService(sqlite_settings, workers=0) as service, Client(service.url) as client:
        yield client


def _study(sdk: Client, make_spec, name: str, trials: int) -> int:
    sdk.create_study(
        make_spec(
            name,
            objective={"metric": "loss", "direction": "minimize"},
            space={
                "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
                "batch_size": {"type": "categorical", "choices": [16, 32]},
                "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
                "units": {"type": "int", "low": 16, "high": 64},
                "dropout": {"type": "float", "low": 0.0, "high": 0.5},
            },
            budget={"max_trials": trials, "max_parallel": 1, "epochs": 1},
            train={"entrypoint": ZERO_COST},
        )
    )
    return trials


def _first(sdk: Client, wait, name: str) -> int:
    return wait(lambda: [t.id for t in sdk.list_trials(name, status="queued")])[0]


def test_a_chaining_worker_runs_the_whole_study_from_one_job(sdk, make_spec, wait) -> None:
    _study(sdk, make_spec, "chained", 4)
    asked: list[int] = []

    def chain(spec: Any) -> bool:
        asked.append(spec.number)
        return True

    assert run_trial(_first(sdk, wait, "chained"), client=sdk, chain=chain) == "completed"
    assert asked == [0, 1, 2, 3]  # asked at every finish
    trials = sdk.list_trials("chained")
    assert [(t.number, t.status, t.attempt) for t in trials] == [
        (n, "completed", 1) for n in range(4)
    ]
    assert {t.worker for t in trials} == {worker_name()}
    wait(lambda: sdk.get_study("chained").status == "completed")


def test_a_worker_that_stops_chaining_leaves_the_next_trial_queued(sdk, make_spec, wait) -> None:
    _study(sdk, make_spec, "bounded", 4)
    assert run_trial(_first(sdk, wait, "bounded"), client=sdk, chain=lambda s: s.number < 1) == (
        "completed"
    )
    trials = sdk.list_trials("bounded")
    assert [(t.number, t.status) for t in trials] == [
        (0, "completed"),
        (1, "completed"),
        (2, "queued"),
    ]


def test_without_chain_one_job_runs_one_trial(sdk, make_spec, wait) -> None:
    _study(sdk, make_spec, "single", 3)
    assert run_trial(_first(sdk, wait, "single"), client=sdk) == "completed"
    statuses = [t.status for t in sdk.list_trials("single")]
    assert statuses == ["completed", "queued"]


def test_an_rq_job_chains_only_while_a_next_trial_fits_in_its_timeout(redis_url: str) -> None:
    job = TrialJob.create(
        RUN_TRIAL,
        args=(1,),
        connection=Redis.from_url(redis_url),
        serializer=JSONSerializer,
        timeout=100,
    )
    may_chain = job._chain_window()
    assert may_chain(SimpleNamespace(timeout=100 - CHAIN_SPARE - 5))
    assert not may_chain(SimpleNamespace(timeout=100 - CHAIN_SPARE + 5))
    unbounded = TrialJob.create(
        RUN_TRIAL,
        args=(1,),
        connection=Redis.from_url(redis_url),
        serializer=JSONSerializer,
        timeout=-1,  # RQ's "never times out"
    )
    assert unbounded._chain_window()(SimpleNamespace(timeout=1e9))
