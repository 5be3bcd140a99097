"""Multi-fidelity through the real server and real training: a promoted configuration
continues from its parent's checkpoint; the median rule stops a poor trial early."""

from __future__ import annotations

import pytest

from hpo.client import Client
from worker.job import run_trial

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run_queued(sdk: Client, name: str, wait, machines=None) -> None:
    """Run every trial the scheduler queues, one at a time, until the study ends
    (each on another worker machine with ``machines``)."""
    while sdk.get_study(name).status == "running":
        queued = wait(
            lambda: (
                sdk.list_trials(name, status="queued") or sdk.get_study(name).status != "running"
            )
        )
        if queued is True:
            return
        if machines is not None:
            machines.switch()
        run_trial(queued[0].id, client=sdk)


def test_asha_promotions_resume_from_the_parents_checkpoint(
    sdk: Client, make_spec, wait, artifact_backend
) -> None:
    """On a shared folder, and on S3 with every trial on a machine of its own."""
    spec = make_spec(
        "asha",
        strategy={"name": "asha", "seed": 3, "options": {"min_budget": 1, "eta": 2}},
        budget={"max_trials": 8, "max_parallel": 1, "epochs": 4},
    )
    sdk.create_study(spec)
    _run_queued(sdk, "asha", wait, artifact_backend)
    trials = {t.number: t for t in sdk.all_trials("asha")}
    promoted = [t for t in trials.values() if "parent" in t.info]
    assert promoted, "ASHA promoted nothing"
    for child in promoted:
        parent = trials[child.info["parent"]]
        assert child.params == parent.params
        assert child.info["budget"] > parent.info["budget"]
        steps = [r.step for r in sdk.get_trial("asha", child.number).reports]
        # trained only the epochs above the parent's budget, up to its own budget
        assert steps == list(range(parent.info["budget"] + 1, child.info["budget"] + 1))
    assert all(t.status == "completed" for t in trials.values())


def test_median_rule_stops_a_poor_trial_at_report_time(sdk: Client, make_spec, wait) -> None:
    spec = make_spec(
        "median",
        budget={"max_trials": 3, "max_parallel": 1, "epochs": 5},
        stopping={"rule": "median", "warmup_steps": 1, "min_trials": 2},
    )
    sdk.create_study(spec)
    ids = []
    for _ in range(3):
        trial = wait(lambda: sdk.list_trials("median", status="queued"))[0]
        ids.append(trial.id)
        started = sdk.start_trial(trial.id)
        from hpo.schemas import FinishIn, ReportIn

        good = len(ids) < 3
        answers = []
        for step in range(1, 6):
            value = 0.9 if good else 0.1
            answer = sdk.report(trial.id, ReportIn(attempt=started.attempt, step=step, value=value))
            answers.append(answer.decision)
            if answer.decision == "stop":
                assert "median" in answer.reason
                break
        status = "completed" if answers[-1] == "continue" else "pruned"
        sdk.finish_trial(trial.id, FinishIn(attempt=started.attempt, status=status, value=value))
    statuses = [t.status for t in sdk.all_trials("median")]
    assert statuses == ["completed", "completed", "pruned"]
