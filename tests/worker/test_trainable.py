"""User training functions (``train.entrypoint``): the Reporter on its own, checkpoint
folders, entrypoint loading, and ``run_trial`` against a live server running functions
from ``tests/helpers/trainables.py`` — every failure of user code ends the trial as
failed with a readable reason, stop decisions reach the function, a retry resumes."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hpo.client import Client
from hpo.embedded import EmbeddedService
from hpo.schemas import FinishIn, Objective, ReportIn, TrainSpec, TrialSpec
from hpo.settings import Settings
from worker.job import SHUTDOWN, run_trial
from worker.lease import Fenced
from worker.trainable import (
    EntrypointError,
    Reporter,
    ReportError,
    TrialStopped,
    checkpoint_dir_for,
    load_entrypoint,
    prepare_checkpoint_dir,
    run_entrypoint,
)

HELPERS = "helpers.trainables"


def trial_spec(**overrides: Any) -> TrialSpec:
    values: dict[str, Any] = {
        "trial_id": 1,
        "study": "s",
        "number": 0,
        "attempt": 1,
        "params": {"quality": 0.8},
        "train": TrainSpec(entrypoint=f"{HELPERS}:curve"),
        "epochs": 3,
        "objective": Objective(metric="score", direction="maximize"),
        "seed": 5,
        "heartbeat_interval": 10.0,
        "timeout": 60.0,
    }
    values.update(overrides)
    return TrialSpec(**values)


class Sent:
    """A ``send`` that records reports and answers stop from a given step on."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.reports: list[ReportIn] = []
        self.stop_at = stop_at

    def __call__(self, report: ReportIn) -> bool:
        self.reports.append(report)
        return self.stop_at is not None and report.step >= self.stop_at


def reporter(tmp_path: Path, send: Sent | None = None, **spec: Any) -> Reporter:
    folder = tmp_path / "ckpt"
    folder.mkdir(exist_ok=True)
    return Reporter(trial_spec(**spec), send or Sent(), device="cpu", checkpoint_dir=folder)


# -- the Reporter ------------------------------------------------------------------------


def test_report_sends_the_objective_and_metrics_and_returns_the_decision(tmp_path) -> None:
    sent = Sent(stop_at=2)
    rep = reporter(tmp_path, sent)
    assert rep.report(1, score=0.5, loss=np.float32(0.25), n=torch.tensor(3)) is False
    assert rep.report(2, score=0.7) is True
    assert rep.should_stop
    first = sent.reports[0]
    assert (first.attempt, first.step, first.value) == (1, 1, 0.5)
    assert first.metrics == {"score": 0.5, "loss": 0.25, "n": 3}
    assert first.checkpoint is None  # nothing saved
    with pytest.raises(TrialStopped):
        rep.report(3, score=0.9)
    assert len(sent.reports) == 2


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"accuracy": 0.5}, "no metric 'score'"),
        ({"score": math.nan}, "diverged"),
        ({"score": math.inf}, "diverged"),
        ({"score": "high"}, "must be a number"),
        ({"score": 0.5, "curve": [1, 2]}, "metric 'curve' is a list"),
    ],
)
def test_a_bad_report_raises_and_is_remembered(tmp_path, metrics, message) -> None:
    sent = Sent()
    rep = reporter(tmp_path, sent)
    with pytest.raises(ReportError, match=message):
        rep.report(1, **metrics)
    assert rep.failure is not None and message.split("'")[0] in rep.failure
    assert sent.reports == []
    with pytest.raises(ReportError):  # still failed, even with a good report now
        rep.report(2, score=0.5)


@pytest.mark.parametrize("steps", [(2, 2), (3, 1), (-1,), (True,), (1.5,)])
def test_steps_must_be_increasing_ints(tmp_path, steps) -> None:
    rep = reporter(tmp_path)
    with pytest.raises(ReportError, match="step"):
        for step in steps:
            rep.report(step, score=0.5)


def test_a_report_carries_the_checkpoint_folder_only_after_it_changed(tmp_path) -> None:
    sent = Sent()
    rep = reporter(tmp_path, sent)
    folder = rep.checkpoint_dir

    def save(text: str) -> None:  # the write-then-rename a careful trainer does
        (folder / "tmp").write_text(text)
        os.replace(folder / "tmp", folder / "model.bin")

    save("1")
    rep.report(1, score=0.1)
    rep.report(2, score=0.2)  # nothing new saved
    save("3")  # same size, same clock tick maybe: still seen as new
    rep.report(3, score=0.3)
    # Each names a frozen copy of the folder, relative to the trial's own folder.
    assert [r.checkpoint for r in sent.reports] == ["snapshots/step-1", None, "snapshots/step-3"]
    snapshot = folder.parent / "snapshots" / "step-3"
    assert (snapshot / "model.bin").read_text() == "3"
    # Delivered (the send returned): the older snapshot is gone.
    assert not (folder.parent / "snapshots" / "step-1").exists()


def test_a_snapshot_holds_the_reported_state_whatever_comes_after(tmp_path) -> None:
    """Files written after a report never reach its snapshot: the function saved step
    2 and died before reporting it, and what a retry gets is step 1's state."""
    rep = reporter(tmp_path, Sent())
    folder = rep.checkpoint_dir
    (folder / "model.bin").write_text("step 1")
    (folder / "big.bin").write_text("unchanged")
    rep.report(1, score=0.1)
    (folder / "model.bin").write_text("step 2")  # in place: the same inode, rewritten
    (folder / "extra.bin").write_text("step 2 only")
    snapshot = folder.parent / "snapshots" / "step-1"
    assert (snapshot / "model.bin").read_text() == "step 1"
    resumed = prepare_checkpoint_dir(folder, snapshot, 1)
    assert resumed == 1
    assert sorted(p.name for p in folder.iterdir()) == ["big.bin", "model.bin"]
    assert (folder / "model.bin").read_text() == "step 1"


def test_unchanged_files_are_linked_not_copied(tmp_path) -> None:
    rep = reporter(tmp_path, Sent())
    folder = rep.checkpoint_dir
    (folder / "big.bin").write_text("weights")
    (folder / "step.txt").write_text("1")
    rep.report(1, score=0.1)
    (folder / "step.txt").write_text("2")
    rep.report(2, score=0.2)
    snapshots = folder.parent / "snapshots"
    assert os.stat(snapshots / "step-2" / "big.bin").st_nlink == 1  # step-1 is pruned
    assert (snapshots / "step-2" / "step.txt").read_text() == "2"
    assert os.stat(folder / "big.bin").st_ino != os.stat(snapshots / "step-2" / "big.bin").st_ino


def test_snapshots_are_kept_until_the_server_has_a_newer_one(tmp_path) -> None:
    acked: list[int | None] = [None]
    folder = tmp_path / "ckpt"
    folder.mkdir()
    rep = Reporter(
        trial_spec(), Sent(), device="cpu", checkpoint_dir=folder, acknowledged=lambda: acked[0]
    )
    snapshots = folder.parent / "snapshots"
    for step in (1, 2, 3):
        (folder / "state").write_text(str(step))
        if step == 3:
            acked[0] = 2  # the server stored step 2's report; step 3's is on its way
        rep.report(step, score=step / 10)
    assert sorted(p.name for p in snapshots.iterdir()) == ["step-2", "step-3"]


def test_fenced_is_remembered_even_when_user_code_swallows_it(tmp_path) -> None:
    def fenced(report: ReportIn) -> bool:
        raise Fenced("superseded")

    rep = Reporter(trial_spec(), fenced, device="cpu", checkpoint_dir=tmp_path)
    with pytest.raises(Fenced):
        rep.report(1, score=0.5)
    assert rep.fenced


def test_the_device_is_named_with_its_index(monkeypatch) -> None:
    from worker import trainable

    assert trainable.device_name("cpu") == "cpu"
    monkeypatch.setattr(trainable, "select_device", lambda _pref: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert trainable.device_name(None) == "cuda:0"  # a slot sees its one GPU as cuda:0


# -- checkpoint folders ----------------------------------------------------------------------


def test_a_fresh_attempt_gets_an_empty_folder(tmp_path) -> None:
    spec = trial_spec()
    folder = checkpoint_dir_for(tmp_path, spec)
    assert folder == tmp_path / "s" / "trial-0" / "checkpoint"
    folder.mkdir(parents=True)
    (folder / "stale.bin").write_text("from an attempt that never reported it")
    (folder.parent / "snapshots" / "step-1").mkdir(parents=True)
    assert prepare_checkpoint_dir(folder, None, None) is None
    assert folder.is_dir() and not any(folder.iterdir())
    assert not any((folder.parent / "snapshots").iterdir())


def test_a_retry_gets_its_snapshot_and_loses_newer_ones(tmp_path) -> None:
    folder = tmp_path / "trial-0" / "checkpoint"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_text("epoch 5, never reported")
    snapshots = tmp_path / "trial-0" / "snapshots"
    for step in (3, 4, 5):
        (snapshots / f"step-{step}").mkdir(parents=True)
        (snapshots / f"step-{step}" / "model.bin").write_text(f"epoch {step}")
    assert prepare_checkpoint_dir(folder, snapshots / "step-4", 4) == 4
    assert (folder / "model.bin").read_text() == "epoch 4"
    assert sorted(p.name for p in snapshots.iterdir()) == ["step-4"]


def test_a_checkpoint_that_is_the_folder_itself_is_kept(tmp_path) -> None:
    """Trials stored before snapshots name the working folder: kept as it is."""
    folder = tmp_path / "trial-0" / "checkpoint"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_text("epoch 4")
    assert prepare_checkpoint_dir(folder, folder, 4) == 4
    assert (folder / "model.bin").read_text() == "epoch 4"


def test_a_promoted_trial_starts_from_a_copy_of_its_parents_snapshot(tmp_path) -> None:
    parent = tmp_path / "trial-2" / "snapshots" / "step-3"
    (parent / "sub").mkdir(parents=True)
    (parent / "sub" / "model.bin").write_text("epoch 3")
    child = tmp_path / "trial-9" / "checkpoint"
    assert prepare_checkpoint_dir(child, parent, 3) == 3
    assert (child / "sub" / "model.bin").read_text() == "epoch 3"
    assert (parent / "sub" / "model.bin").exists()  # the parent's stays


def test_a_vanished_checkpoint_means_starting_over(tmp_path) -> None:
    assert prepare_checkpoint_dir(tmp_path / "mine", tmp_path / "gone", 3) is None


# -- loading entrypoints -------------------------------------------------------------------


def test_load_entrypoint_finds_the_function() -> None:
    from helpers import trainables

    assert load_entrypoint(f"{HELPERS}:curve") is trainables.curve


@pytest.mark.parametrize(
    ("entrypoint", "message"),
    [
        ("no_such_package.train:fit", "cannot import entrypoint 'no_such_package.train:fit'"),
        (f"{HELPERS}:absent", "has no attribute 'absent'"),
        (f"{HELPERS}:not_a_function", "is not a function"),
        ("helpers.trainables", "not package.module:function"),
    ],
)
def test_load_entrypoint_errors_name_the_entrypoint(entrypoint, message) -> None:
    with pytest.raises(EntrypointError, match=message):
        load_entrypoint(entrypoint)


def test_a_module_failing_at_import_is_an_entrypoint_error(tmp_path, monkeypatch) -> None:
    (tmp_path / "broken_trainer.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EntrypointError, match=r"ModuleNotFoundError.*no_such_dependency_xyz"):
        load_entrypoint("broken_trainer:train")


def test_the_workers_current_directory_is_searched_last(tmp_path, monkeypatch) -> None:
    (tmp_path / "cwd_trainer_pkg").mkdir()
    (tmp_path / "cwd_trainer_pkg" / "fit.py").write_text("def train(p, r):\n    return None\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", ".")])
    function = load_entrypoint("cwd_trainer_pkg.fit:train")
    assert function.__module__ == "cwd_trainer_pkg.fit"
    assert __import__("sys").path[-1] == str(tmp_path)


def test_run_entrypoint_outcomes(tmp_path) -> None:
    folder = tmp_path / "ckpt"

    def outcome(name: str, **spec: Any):  # type: ignore[no-untyped-def]
        train = TrainSpec(entrypoint=f"{HELPERS}:{name}")
        return run_entrypoint(
            trial_spec(train=train, **spec), Sent(), device="cpu", checkpoint_dir=folder
        )

    done = outcome("curve")
    assert (done.value, done.stopped, done.error) == (pytest.approx(0.8), False, None)
    assert outcome("final_only").value == 0.75
    assert "RuntimeError: boom at lr=None" in outcome("raises").error
    assert "sys.exit(3)" in outcome("exits").error
    assert "returned a float" in outcome("returns_a_number").error
    assert "reported no 'score'" in outcome("never_reports").error
    assert "no metric 'score'" in outcome("swallows_errors").error


# -- run_trial against a live server ----------------------------------------------------------


@pytest.fixture
def sdk(sqlite_settings: Settings, tmp_path: Path, monkeypatch) -> Iterator[Client]:
    """A live server (no workers: the test runs trials) and artifacts in this test's
    folder (``run_trial`` reads settings from the environment, as a worker does)."""
    monkeypatch.setenv("HPO_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    with EmbeddedService(sqlite_settings, workers=0) as service, Client(service.url) as client:
        yield client


@pytest.fixture
def study(sdk: Client, make_spec):  # type: ignore[no-untyped-def]
    """Create a one-trial study training ``helpers.trainables:<function>``."""

    def _create(name: str, function: str, epochs: int = 3, **params: Any) -> str:
        sdk.create_study(
            make_spec(
                name,
                objective={"metric": "score", "direction": "maximize"},
                space={"quality": {"type": "float", "low": 0.5, "high": 0.9}},
                budget={"max_trials": 1, "max_parallel": 1, "epochs": epochs},
                train={"entrypoint": f"{HELPERS}:{function}", "params": params},
            )
        )
        return name

    return _create


def queued(sdk: Client, wait, name: str) -> int:  # type: ignore[no-untyped-def]
    return wait(lambda: [t.id for t in sdk.list_trials(name, status="queued")])[0]


def test_a_function_trains_reports_and_completes(sdk: Client, study, wait, tmp_path) -> None:
    study("fn", "curve", epochs=4)
    assert run_trial(queued(sdk, wait, "fn"), client=sdk) == "completed"
    trial = sdk.get_trial("fn", 0)
    assert [r.step for r in trial.reports] == [1, 2, 3, 4]
    quality = trial.params["quality"]
    curve = [quality * step / 4 for step in (1, 2, 3, 4)]
    assert [r.value for r in trial.reports] == pytest.approx(curve)
    assert trial.value == pytest.approx(quality)
    assert trial.reports[0].metrics["device"] == "cpu"
    assert trial.reports[0].metrics["resumed_from"] == -1
    folder = tmp_path / "artifacts" / "fn" / "trial-0" / "checkpoint"
    assert (folder / "state.txt").read_text() == "4"


def test_the_reporter_tells_the_function_about_its_trial(sdk: Client, study, wait) -> None:
    study("ctx", "context", epochs=7, batch=32)
    assert run_trial(queued(sdk, wait, "ctx"), client=sdk) == "completed"
    metrics = sdk.get_trial("ctx", 0).reports[0].metrics
    assert metrics["study"] == "ctx" and metrics["number"] == 0 and metrics["attempt"] == 1
    assert metrics["epochs"] == 7 and metrics["device"] == "cpu"
    assert isinstance(metrics["seed"], int)
    assert metrics["params"].startswith("batch=32,quality=")
    assert metrics["folder"].endswith(os.path.join("ctx", "trial-0", "checkpoint"))


@pytest.mark.parametrize(
    ("function", "reason"),
    [
        ("missing_function", f"entrypoint '{HELPERS}:missing_function'"),
        ("raises", "RuntimeError: boom"),
        ("wrong_metric", "no metric 'score'"),
        ("nan_objective", "diverged"),
        ("exits", "sys.exit(3)"),
    ],
)
def test_user_code_failures_fail_the_trial_with_the_reason(
    sdk: Client, study, wait, function, reason
) -> None:
    name = f"bad-{function.replace('_', '-')}"
    study(name, function)
    assert run_trial(queued(sdk, wait, name), client=sdk) == "failed"
    trial = sdk.get_trial(name, 0)
    assert trial.status == "failed"
    assert reason in trial.error
    # Its one trial failed: the study ends failed, saying why.
    study_ = wait(lambda: (s := sdk.get_study(name)).status == "failed" and s)
    assert study_.reason.startswith("every trial failed") and reason in study_.reason


def test_an_uninstalled_module_fails_the_trial_naming_the_entrypoint(
    sdk: Client, make_spec, wait
) -> None:
    sdk.create_study(
        make_spec(
            "noimport",
            budget={"max_trials": 1, "max_parallel": 1, "epochs": 1},
            train={"entrypoint": "not_installed_anywhere.train:fit"},
        )
    )
    assert run_trial(queued(sdk, wait, "noimport"), client=sdk) == "failed"
    error = sdk.get_trial("noimport", 0).error
    assert "not_installed_anywhere.train:fit" in error and "ModuleNotFoundError" in error


@pytest.mark.parametrize("function", ["curve", "ignores_stop"])
def test_a_stop_decision_reaches_the_function(sdk: Client, study, wait, tmp_path, function) -> None:
    name = f"halt-{function.replace('_', '-')}"
    study(name, function, epochs=500, pause=0.02)
    trial_id = queued(sdk, wait, name)
    outcome: list[str] = []
    runner = threading.Thread(target=lambda: outcome.append(run_trial(trial_id, client=sdk)))
    runner.start()
    wait(lambda: sdk.get_trial(name, 0).reports)
    sdk.stop_study(name)
    runner.join(timeout=60)
    assert outcome == ["stopped"]
    reports = sdk.get_trial(name, 0).reports
    assert len(reports) < 500
    if function == "curve":  # it saw the stop and returned
        marker = tmp_path / "artifacts" / name / "trial-0" / "checkpoint" / "stopped_at.txt"
        assert int(marker.read_text()) == reports[-1].step


def test_a_retry_resuming_at_the_last_step_completes_with_the_reported_value(
    sdk: Client, study, wait, tmp_path
) -> None:
    """The first attempt reported (and checkpointed) the last step, then its worker
    died before the finish. The retry resumes at that step with nothing left to train
    and reports nothing: the trial completes with the value reported at that step."""
    from helpers import trainables

    from hpo.schemas import ReleaseIn

    study("last", "curve", epochs=3)
    spec = sdk.start_trial(queued(sdk, wait, "last"), worker="doomed")
    folder = checkpoint_dir_for(tmp_path / "artifacts", spec)
    folder.mkdir(parents=True)
    first = Reporter(
        spec,
        lambda r: sdk.report(spec.trial_id, r).decision == "stop",
        device="cpu",
        checkpoint_dir=folder,
    )
    trainables.curve(dict(spec.params), first)  # every step reported; then the worker dies
    sdk.release_trial(spec.trial_id, ReleaseIn(attempt=1, reason="worker lost"))
    assert run_trial(queued(sdk, wait, "last"), client=sdk) == "completed"
    trial = sdk.get_trial("last", 0)
    assert trial.status == "completed" and trial.attempt == 2
    assert trial.value == pytest.approx(trial.params["quality"])  # step 3 of 3: quality
    assert [(r.attempt, r.step) for r in trial.reports] == [(1, 1), (1, 2), (1, 3)]


def test_a_shutdown_at_the_last_step_finishes_instead_of_handing_back(
    sdk: Client, study, wait
) -> None:
    study("done", "interrupted", epochs=3, interrupt_at=3)
    try:
        assert run_trial(queued(sdk, wait, "done"), client=sdk) == "completed"
    finally:
        SHUTDOWN.clear()
    trial = sdk.get_trial("done", 0)
    assert trial.attempt == 1 and trial.value == pytest.approx(0.3)


def test_a_report_naming_a_path_outside_the_trial_is_refused(sdk: Client, study, wait) -> None:
    """A report names its checkpoint inside the trial's own folder; a path elsewhere
    (which a later attempt would copy) is a 422 naming the field, and nothing is
    stored."""
    import httpx

    study("escape", "curve")
    spec = sdk.start_trial(queued(sdk, wait, "escape"), worker="w")
    url = f"{sdk.server_url}/api/v1/trials/{spec.trial_id}/reports"
    for path in ("/etc", "../../other-study/trial-0/checkpoint", "a/../../b", "C:\\x", ""):
        body = {"attempt": spec.attempt, "step": 1, "value": 0.5, "checkpoint": path}
        answer = httpx.post(url, json=body)
        assert answer.status_code == 422, path
        assert answer.json()["detail"][0]["field"] == "checkpoint"
    assert sdk.get_trial("escape", 0).reports == []
    sdk.report(spec.trial_id, ReportIn(attempt=1, step=1, value=0.5, checkpoint="./snap/a"))
    sdk.finish_trial(spec.trial_id, FinishIn(attempt=1, status="completed", value=0.5))
    follow = sdk.get_trial("escape", 0)
    assert [r.step for r in follow.reports] == [1]


def test_a_retried_trial_resumes_from_its_checkpoint(
    sdk: Client, study, wait, artifact_backend
) -> None:
    """On a shared folder, and on S3 with the retry on a machine whose cache is empty."""
    study("again", "interrupted", epochs=5, interrupt_at=2)
    trial_id = queued(sdk, wait, "again")
    try:
        assert run_trial(trial_id, client=sdk) == "released"  # worker shutting down
    finally:
        SHUTDOWN.clear()
    assert "again/trial-0/snapshots/step-2/state.txt" in artifact_backend.stored("again/")
    artifact_backend.switch()
    assert run_trial(queued(sdk, wait, "again"), client=sdk) == "completed"
    trial = sdk.get_trial("again", 0)
    assert trial.attempt == 2
    second = [r for r in trial.reports if r.attempt == 2]
    assert [r.step for r in second] == [3, 4, 5]
    assert {r.metrics["resumed_from"] for r in second} == {2}
    assert trial.value == pytest.approx(1.0)
