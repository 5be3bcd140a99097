"""Multi-fidelity through the real server and real training: a promoted configuration
continues from its parent's checkpoint, a PBT member from the checkpoint of the member
it copied; the median rule stops a poor trial early."""

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


def test_pbt_members_continue_the_checkpoint_they_copied(sdk: Client, make_spec, wait) -> None:
    space = {
        "lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
        "momentum": {"type": "float", "low": 0.0, "high": 0.95},
        "optimizer": ["sgd"],
    }
    spec = make_spec(
        "pbt",
        space=space,
        strategy={"name": "pbt", "seed": 2, "options": {"population_size": 3, "interval": 2}},
        budget={"max_trials": 9, "max_parallel": 1, "epochs": 6},
    )
    sdk.create_study(spec)
    _run_queued(sdk, "pbt", wait)
    trials = {t.number: t for t in sdk.all_trials("pbt")}
    assert all(t.status == "completed" for t in trials.values())
    assert sdk.get_study("pbt").status == "completed"
    copied = [t for t in trials.values() if t.info.get("source") == "exploit"]
    assert copied, "no member copied another"
    for child in [t for t in trials.values() if "parent" in t.info]:
        parent = trials[child.info["parent"]]
        steps = [r.step for r in sdk.get_trial("pbt", child.number).reports]
        # resumed from the parent's final epoch, trained one interval further
        assert steps == list(range(parent.info["budget"] + 1, child.info["budget"] + 1))
    for child in copied:
        parent = trials[child.info["parent"]]
        assert parent.info["member"] == child.info["copied_from"]
        assert child.params["lr"] != parent.params["lr"] or (
            child.params["momentum"] != parent.params["momentum"]
        )
    ends = {t.info["member"] for t in trials.values() if t.info["budget"] == 6}
    assert ends == {0, 1, 2}
    _dashboard_shows_the_lineage(sdk, "pbt", trials)


def _dashboard_shows_the_lineage(sdk: Client, name: str, trials: dict) -> None:
    """The study page lists the best member's segments (its hyperparameter schedule)
    and every copy: which member copied which, at which epoch."""
    import re

    import httpx

    best = sdk.get_study(name).best_trial
    assert best is not None
    html = {"accept": "text/html,application/xhtml+xml"}
    page = httpx.get(f"{sdk.server_url}/studies/{name}", headers=html, timeout=30).text
    start = page.index('id="pbt-schedule"')
    schedule = page[start : page.index("</table>", start)]
    shown = [int(n) for n in re.findall(r"trials/(\d+)\">#", schedule)]
    chain, number = [], best.number
    while True:
        chain.insert(0, number)
        if "parent" not in trials[number].info:
            break
        number = trials[number].info["parent"]
    assert shown == chain and shown[0] != shown[-1]
    for copy in [t for t in trials.values() if t.info.get("source") == "exploit"]:
        line = (
            f"member {copy.info['member']} copied member {copy.info['copied_from']} "
            f'(trial <a href="/studies/{name}/trials/{copy.info["parent"]}">'
            f"#{copy.info['parent']}</a>) at epoch {trials[copy.info['parent']].info['budget']}"
        )
        assert line in page


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
