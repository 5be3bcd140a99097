"""``run_trial`` against the live server: real training on bundled/generated data,
one report per epoch, failures end the trial (not the worker) with the reason."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from hpo.client import Client
from worker.job import SHUTDOWN, run_trial

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _queued(sdk: Client, wait, name: str) -> int:
    return wait(lambda: [t.id for t in sdk.list_trials(name, status="queued")])[0]


def test_run_trial_trains_reports_every_epoch_and_completes(sdk: Client, make_spec, wait) -> None:
    space = {"lr": {"type": "float", "low": 0.005, "high": 0.01, "log": True}}
    sdk.create_study(
        make_spec("ok", space=space, budget={"max_trials": 1, "max_parallel": 1, "epochs": 3})
    )
    trial_id = _queued(sdk, wait, "ok")
    assert run_trial(trial_id, client=sdk) == "completed"
    trial = sdk.get_trial("ok", 0)
    assert trial.status == "completed"
    assert trial.attempt == 1
    assert [r.step for r in trial.reports] == [1, 2, 3]
    assert trial.value == pytest.approx(trial.reports[-1].value)
    assert trial.value > 0.5  # synthetic data has 3 classes: clearly above chance
    assert set(trial.reports[0].metrics) >= {"val_loss", "val_accuracy", "train_loss", "lr"}
    wait(lambda: sdk.get_study("ok").status == "completed")


def test_nan_loss_fails_the_trial_with_the_reason_and_the_study_goes_on(
    sdk: Client, make_spec, wait
) -> None:
    space = {"lr": {"type": "float", "low": 1e5, "high": 1e6, "log": True}}
    spec = make_spec(
        "nan",
        space=space,
        budget={"max_trials": 2, "max_parallel": 1, "epochs": 3},
        train={
            "model": "mlp",
            "dataset": "digits",
            "params": {"optimizer": "sgd", "momentum": 0.9},
        },
    )
    sdk.create_study(spec)
    assert run_trial(_queued(sdk, wait, "nan"), client=sdk) == "failed"
    first = sdk.get_trial("nan", 0)
    assert first.status == "failed"
    assert "nan" in first.error.lower() or "inf" in first.error.lower()
    # the study goes on: the next trial gets queued
    assert run_trial(_queued(sdk, wait, "nan"), client=sdk) == "failed"
    # Every trial failed: the study ends failed, with the reason, not completed.
    wait(lambda: sdk.get_study("nan").status == "failed")
    assert "training loss became" in sdk.get_study("nan").reason


def test_invalid_fixed_parameter_fails_the_trial_naming_it(sdk: Client, make_spec, wait) -> None:
    spec = make_spec(
        "badparam",
        budget={"max_trials": 1, "max_parallel": 1, "epochs": 1},
        train={"model": "mlp", "dataset": "synthetic", "params": {"activation": "sparkle"}},
    )
    sdk.create_study(spec)
    assert run_trial(_queued(sdk, wait, "badparam"), client=sdk) == "failed"
    assert "activation" in sdk.get_trial("badparam", 0).error


def test_stop_mid_run_ends_training_and_the_trial_is_stopped(sdk: Client, make_spec, wait) -> None:
    spec = make_spec("halt", budget={"max_trials": 1, "max_parallel": 1, "epochs": 500})
    sdk.create_study(spec)
    trial_id = _queued(sdk, wait, "halt")
    outcome: list[str] = []
    runner = threading.Thread(target=lambda: outcome.append(run_trial(trial_id, client=sdk)))
    runner.start()
    wait(lambda: sdk.get_trial("halt", 0).reports)  # it is training and reporting
    sdk.stop_study("halt")
    runner.join(timeout=60)
    assert outcome == ["stopped"]
    trial = sdk.get_trial("halt", 0)
    assert trial.status == "stopped"
    assert len(trial.reports) < 500


def test_a_stopped_studys_queued_trial_is_not_started(sdk: Client, make_spec, wait) -> None:
    sdk.create_study(make_spec("late", budget={"max_trials": 1, "max_parallel": 1, "epochs": 1}))
    trial_id = _queued(sdk, wait, "late")
    sdk.stop_study("late")
    assert run_trial(trial_id, client=sdk) == "skipped"
    assert sdk.get_trial("late", 0).status == "stopped"


def test_a_second_delivery_of_the_same_job_is_skipped(sdk: Client, make_spec, wait) -> None:
    space = {"lr": {"type": "float", "low": 0.005, "high": 0.01}}
    sdk.create_study(
        make_spec("twice", space=space, budget={"max_trials": 1, "max_parallel": 1, "epochs": 1})
    )
    trial_id = _queued(sdk, wait, "twice")
    assert run_trial(trial_id, client=sdk) == "completed"
    assert run_trial(trial_id, client=sdk) == "skipped"
    assert sdk.get_trial("twice", 0).attempt == 1


def test_a_shutdown_hands_back_at_a_saved_epoch_and_the_retry_resumes_after_it(
    sdk: Client, make_spec, wait, monkeypatch, artifact_backend
) -> None:
    # Checkpoints on an interval no epoch reaches: the hand-back itself must save one.
    monkeypatch.setenv("HPO_CHECKPOINT_INTERVAL", "3600")
    spec = make_spec("handback", budget={"max_trials": 1, "max_parallel": 1, "epochs": 500})
    sdk.create_study(spec)
    trial_id = _queued(sdk, wait, "handback")

    def attempt(reported: Callable[[Any], Any]) -> tuple[threading.Thread, list[str]]:
        """Start an attempt in a thread; return once ``reported(trial)`` holds."""
        outcome: list[str] = []
        runner = threading.Thread(target=lambda: outcome.append(run_trial(trial_id, client=sdk)))
        runner.start()
        wait(lambda: reported(sdk.get_trial("handback", 0)), timeout=60)
        return runner, outcome

    runner, outcome = attempt(lambda t: t.reports)
    try:
        SHUTDOWN.set()
        runner.join(timeout=60)
    finally:
        SHUTDOWN.clear()
    assert outcome == ["released"]
    handed = sdk.get_trial("handback", 0)
    assert handed.status == "queued" and handed.failures == 0
    first = [r.step for r in handed.reports]
    assert artifact_backend.stored("handback/") == ["handback/trial-0/checkpoint.pt"]
    artifact_backend.switch()  # the retry runs elsewhere (with S3: an empty cache)
    runner, outcome = attempt(lambda t: any(r.attempt == 2 for r in t.reports))
    sdk.stop_study("handback")
    runner.join(timeout=60)
    assert outcome == ["stopped"]
    second = [r.step for r in sdk.get_trial("handback", 0).reports if r.attempt == 2]
    assert min(second) == max(first) + 1  # no epoch retrained, none skipped
