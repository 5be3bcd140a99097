"""Whole system with the user's own training code (``train.entrypoint``): the embedded
server and real local worker processes import and run the function, reports flow as for
built-in models, ASHA promotions resume from the function's own checkpoint, and the
median rule's stop reaches the function.

Worker processes are spawned with this process's ``sys.path``, which holds the
repository root and ``tests/`` (pytest's ``pythonpath``): they import
``examples.custom_train`` and ``helpers.trainables`` as a worker started in a project
folder imports the project's code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hpo.client import Client
from hpo.embedded import EmbeddedService
from hpo.settings import Settings
from hpo.spec import load_spec_file

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the worker processes (which read ``HPO_*`` from the environment they are
    spawned with) keep checkpoints."""
    folder = tmp_path / "artifacts"
    monkeypatch.setenv("HPO_ARTIFACT_DIR", str(folder))
    return folder


@pytest.fixture
def service(sqlite_settings: Settings, artifacts: Path) -> Iterator[EmbeddedService]:
    with EmbeddedService(sqlite_settings, workers=2) as running:
        yield running


def test_the_shipped_example_runs_with_asha_and_promotions_resume(
    service: EmbeddedService, wait
) -> None:
    spec = load_spec_file(ROOT / "examples" / "custom-trainable.yaml")
    spec["budget"] = {"max_trials": 8, "max_parallel": 2, "epochs": 3}
    with Client(service.url) as client:
        client.create_study(spec)
        name = spec["name"]
        wait(lambda: client.get_study(name).status == "completed", timeout=240)
        trials = {t.number: client.get_trial(name, t.number) for t in client.all_trials(name)}
    assert len(trials) == 8
    assert {t.status for t in trials.values()} == {"completed"}, [t.error for t in trials.values()]
    for trial in trials.values():
        assert trial.reports, trial.number
        last = trial.reports[-1]
        assert trial.value == pytest.approx(last.value)
        assert 0.0 <= trial.value <= 1.0
        assert set(last.metrics) == {"val_accuracy", "val_loss", "train_loss"}
        assert trial.reports[-1].step == trial.info["budget"]
    promoted = [t for t in trials.values() if "parent" in t.info]
    assert promoted, "ASHA promoted nothing"
    for child in promoted:
        parent = trials[child.info["parent"]]
        # The function found its parent's checkpoint and trained only the epochs above it.
        steps = [r.step for r in child.reports]
        assert steps == list(range(parent.info["budget"] + 1, child.info["budget"] + 1))
    assert max(t.value for t in trials.values()) > 0.8  # digits: an MLP learns it quickly


def test_the_median_rule_stops_a_poor_trial_and_the_function_sees_it(
    service: EmbeddedService, make_spec, wait, artifacts: Path
) -> None:
    spec = make_spec(
        "median-fn",
        objective={"metric": "score", "direction": "maximize"},
        space={"quality": {"type": "categorical", "choices": [0.9, 0.8, 0.2]}},
        strategy={"name": "grid", "seed": 1, "options": {"shuffle": False}},
        budget={"max_trials": 3, "max_parallel": 1, "epochs": 6},
        stopping={"rule": "median", "warmup_steps": 1, "min_trials": 2},
        train={"entrypoint": "helpers.trainables:curve"},
    )
    with Client(service.url) as client:
        client.create_study(spec)
        wait(lambda: client.get_study("median-fn").status == "completed", timeout=120)
        trials = [client.get_trial("median-fn", t.number) for t in client.all_trials("median-fn")]
    by_quality = {t.params["quality"]: t for t in trials}
    for good in (0.9, 0.8):
        trial = by_quality[good]
        assert trial.status == "completed", trial.error
        assert [r.step for r in trial.reports] == [1, 2, 3, 4, 5, 6]
        assert trial.value == pytest.approx(good)
        assert trial.reports[0].metrics["device"] == "cpu"
    poor = by_quality[0.2]
    assert poor.status == "pruned", poor.error
    assert len(poor.reports) < 6
    assert poor.value == pytest.approx(poor.reports[-1].value)
    # The function got True from report() and returned (it left a marker saying when).
    marker = artifacts / "median-fn" / f"trial-{poor.number}" / "checkpoint" / "stopped_at.txt"
    assert int(marker.read_text()) == poor.reports[-1].step
    assert len({t.worker for t in trials}) >= 1


def test_a_distributed_trial_runs_two_gloo_ranks_and_only_rank_0_reports(
    service: EmbeddedService, make_spec, wait, tmp_path: Path
) -> None:
    record = tmp_path / "ranks.txt"
    spec = make_spec(
        "ddp",
        objective={"metric": "score", "direction": "maximize"},
        space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
        budget={"max_trials": 2, "max_parallel": 1, "epochs": 3},
        train={
            "entrypoint": "helpers.trainables:allreduce",
            "processes": 2,
            "params": {"record": str(record), "world": 2},
        },
    )
    with Client(service.url) as client:
        client.create_study(spec)
        wait(lambda: client.get_study("ddp").status == "completed", timeout=180)
        trials = [client.get_trial("ddp", t.number) for t in client.all_trials("ddp")]
    for trial in trials:
        assert trial.status == "completed", trial.error
        # one report per step (rank 0's), each the sum 1 + 2 over both ranks
        assert [r.step for r in trial.reports] == [1, 2, 3]
        assert {r.value for r in trial.reports} == {3.0}
    ranks = sorted(tuple(line.split()) for line in record.read_text().splitlines())
    assert ranks == [("0", "2", "0"), ("0", "2", "0"), ("1", "2", "1"), ("1", "2", "1")]
