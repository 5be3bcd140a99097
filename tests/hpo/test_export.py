"""Exports of a study: CSV/JSON rows and TensorBoard HParams logs, read back with
TensorBoard's own event reader (what its HParams dashboard loads).

The study runs on a real server with no workers; the test drives its trials over HTTP,
including a failed trial and a trial whose first attempt was released (so only the
second attempt's learning curve may be exported).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from helpers.studies import multi_fidelity_study, study_public

from hpo.client import Client
from hpo.embedded import EmbeddedService
from hpo.export import (
    BASE_COLUMNS,
    MissingDependency,
    csv_text,
    records_to_json,
    trial_records,
    write_tensorboard,
)
from hpo.schemas import FinishIn, ReleaseIn, ReportIn
from hpo.settings import Settings

NAME = "tb-study"
VALUES = {0: 0.61, 2: 0.83}  # trial 1 fails


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, study_spec) -> Iterator[Client]:
    root = tmp_path_factory.mktemp("export")
    settings = Settings(
        data_dir=root, database_url=f"sqlite:///{root / 'hpo.db'}", scheduler_interval=0.05
    )
    with EmbeddedService(settings, workers=0) as service, Client(service.url) as sdk:
        sdk.create_study(study_spec)
        _run_study(sdk)
        yield sdk


@pytest.fixture(scope="module")
def study_spec() -> dict:
    return {
        "name": NAME,
        "description": "export test",
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "space": {
            "lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
            "batch_size": {"type": "categorical", "choices": [32, 64]},
            "units": {"type": "int", "low": 8, "high": 32},
            "activation": ["relu", "tanh"],
        },
        "strategy": {"name": "random", "seed": 7},
        "budget": {"max_trials": 3, "max_parallel": 3, "epochs": 3},
        "train": {"model": "mlp", "dataset": "synthetic", "params": {}},
    }


def _run_study(sdk: Client) -> None:
    import time

    deadline = time.monotonic() + 30
    while len(queued := sdk.list_trials(NAME, status="queued")) < 3:
        assert time.monotonic() < deadline, "the scheduler created no trials"
        time.sleep(0.05)
    for t in queued:
        spec = sdk.start_trial(t.id, worker="w:1")
        if t.number == 1:
            sdk.finish_trial(
                t.id, FinishIn(attempt=spec.attempt, status="failed", error="diverged")
            )
            continue
        if t.number == 0:  # a first attempt that is handed back: its curve is superseded
            sdk.report(t.id, ReportIn(attempt=spec.attempt, step=0, value=99.0))
            sdk.release_trial(t.id, ReleaseIn(attempt=spec.attempt))
            spec = sdk.start_trial(t.id, worker="w:2")
        final = VALUES[t.number]
        for step in range(3):
            sdk.report(
                t.id,
                ReportIn(
                    attempt=spec.attempt,
                    step=step,
                    value=final - 0.1 * (2 - step),
                    metrics={"val_loss": 1.0 - final + 0.1 * (2 - step), "note": "text"},
                ),
            )
        sdk.finish_trial(t.id, FinishIn(attempt=spec.attempt, status="completed", value=final))
    while sdk.get_study(NAME).status != "completed":
        assert time.monotonic() < deadline, "the study did not complete"
        time.sleep(0.05)


def test_csv_and_json_rows(study: Client) -> None:
    records = study.trials_records(NAME)
    text = csv_text(records)
    rows = list(csv.DictReader(io.StringIO(text)))
    params = ["param_lr", "param_batch_size", "param_units", "param_activation"]
    metrics = ["metric_note", "metric_val_loss"]  # each reported metric, by name
    assert list(rows[0]) == [*BASE_COLUMNS, *params, *metrics]
    assert float(rows[0]["metric_val_loss"]) == pytest.approx(1.0 - float(rows[0]["value"]))
    assert rows[0]["metric_note"] == "text"
    assert [r["status"] for r in rows] == ["completed", "failed", "completed"]
    assert rows[1]["value"] == ""  # None is an empty cell
    assert rows[1]["error"] == "diverged"
    assert float(rows[2]["value"]) == pytest.approx(0.83)
    assert rows[0]["attempt"] == "2" and rows[0]["worker"] == "w:2"
    assert datetime.fromisoformat(rows[0]["started_at"].replace("Z", "+00:00")).tzinfo
    datetime.fromisoformat(rows[0]["started_at"].replace("Z", "+00:00"))
    assert float(rows[0]["duration_s"]) >= 0
    assert [r["best"] for r in rows] == ["False", "False", "True"]  # 0.83 beats 0.61
    assert {r["budget"] + r["rung"] + r["parent"] for r in rows} == {""}  # one fidelity

    loaded = json.loads(records_to_json(records))
    assert [r["number"] for r in loaded] == [0, 1, 2]
    assert loaded[1]["value"] is None
    assert loaded[0]["param_activation"] in ("relu", "tanh")
    assert loaded[0]["param_batch_size"] in (32, 64)


def _hparams(mux, run: str, tag: str):
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = mux.PluginRunToTagToContent("hparams")[run][tag]
    return plugin_data_pb2.HParamsPluginData.FromString(content)


def test_tensorboard_hparams_logs_read_back(study: Client, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    logdir = tmp_path / "tb"
    runs = study.export_tensorboard(NAME, logdir)
    assert [r.name for r in runs] == ["trial-00000", "trial-00002"]  # completed only
    for run in (logdir, *runs):
        assert list(run.glob("events.out.tfevents.*")), run

    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    assert set(mux.Runs()) == {".", "trial-00000", "trial-00002"}

    # The experiment: every parameter with its domain, and the metrics.
    experiment = _hparams(mux, ".", "_hparams_/experiment").experiment
    assert experiment.name == NAME and experiment.description == "export test"
    infos = {h.name: h for h in experiment.hparam_infos}
    assert list(infos) == ["lr", "batch_size", "units", "activation"]
    assert infos["lr"].domain_interval.min_value == pytest.approx(1e-3)
    assert infos["lr"].domain_interval.max_value == pytest.approx(1e-1)
    assert infos["units"].domain_interval.max_value == 32
    assert [v.number_value for v in infos["batch_size"].domain_discrete.values] == [32, 64]
    assert [v.string_value for v in infos["activation"].domain_discrete.values] == [
        "relu",
        "tanh",
    ]
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert metrics == ["hparams/val_accuracy", "val_accuracy", "val_loss"]

    # Each completed trial: its hparams, final value and learning curve.
    for number, run in ((0, "trial-00000"), (2, "trial-00002")):
        trial = study.get_trial(NAME, number)
        start = _hparams(mux, run, "_hparams_/session_start_info").session_start_info
        assert start.hparams["lr"].number_value == pytest.approx(trial.params["lr"])
        assert start.hparams["units"].number_value == trial.params["units"]
        assert start.hparams["activation"].string_value == trial.params["activation"]
        end = _hparams(mux, run, "_hparams_/session_end_info").session_end_info
        assert end.status == 1  # STATUS_SUCCESS
        final = mux.Scalars(run, "hparams/val_accuracy")
        assert [(e.step, e.value) for e in final] == [(2, pytest.approx(VALUES[number]))]
        curve = mux.Scalars(run, "val_accuracy")
        expected = [VALUES[number] - 0.2, VALUES[number] - 0.1, VALUES[number]]
        # Trial 0's released first attempt (value 99 at step 0) is not in the curve.
        assert [e.step for e in curve] == [0, 1, 2]
        assert [e.value for e in curve] == pytest.approx(expected)
        assert len(mux.Scalars(run, "val_loss")) == 3
        assert "note" not in mux.Runs()[run]["scalars"]  # text metrics are not scalars


def test_tensorboard_export_needs_tensorboardx(study: Client, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(MissingDependency, match="pip install tensorboardX"):
        study.export_tensorboard(NAME, tmp_path / "tb")
    assert not (tmp_path / "tb").exists()


def test_tensorboard_export_of_a_study_without_completed_trials(tmp_path: Path) -> None:
    study = study_public(
        name="empty",
        objective={"metric": "val loss", "direction": "minimize"},
        max_trials=3,
        spec={"space": {"opt": {"type": "categorical", "choices": ["adam", 1, True]}}},
    )
    assert write_tensorboard(study, [], tmp_path / "tb") == []
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))  # the experiment alone
    assert trial_records([], study) == []


def test_multi_fidelity_rows_carry_budget_rung_parent_and_the_full_budget_best() -> None:
    study, trials = multi_fidelity_study()
    rows = trial_records(trials, study)
    assert [(r["budget"], r["rung"], r["parent"]) for r in rows] == [
        (1, 0, None),
        (3, 1, 0),
        (9, 2, 1),
    ]
    # Trial 1 has the highest value, but at 3 of 9 epochs: the best is its continuation.
    assert [r["best"] for r in rows] == [False, False, True]
