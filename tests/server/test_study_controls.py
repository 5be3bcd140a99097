"""Study controls over real HTTP: pause, resume, budget changes, and sorting the trial
list; on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import httpx


def _create(api: httpx.Client, make_spec, name: str, **budget) -> None:
    spec = make_spec(name, budget={"max_trials": 6, "max_parallel": 2, "epochs": 2, **budget})
    response = api.post("/studies", json=spec)
    assert response.status_code == 201, response.text


def _trials(api: httpx.Client, name: str, **params) -> list[dict]:
    response = api.get(f"/studies/{name}/trials", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _run(api: httpx.Client, trial: dict, value: float) -> None:
    started = api.post(f"/trials/{trial['id']}/start", json={"worker": "w:1"})
    assert started.status_code == 200, started.text
    attempt = started.json()["attempt"]
    done = api.post(
        f"/trials/{trial['id']}/finish",
        json={"attempt": attempt, "status": "completed", "value": value},
    )
    assert done.status_code == 200, done.text


def test_pause_creates_no_new_trials_and_resume_goes_on(api, make_spec, wait) -> None:
    _create(api, make_spec, "p")
    first = wait(lambda: len(_trials(api, "p")) == 2 and _trials(api, "p"))
    paused = api.post("/studies/p/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    # Trials queued before the pause still run to the end.
    _run(api, first[0], 0.5)
    time.sleep(0.5)  # ten scheduler passes: none may create a trial
    assert len(_trials(api, "p")) == 2
    assert api.get("/studies/p").json()["status"] == "paused"
    assert api.post("/studies/p/pause").json()["status"] == "paused"  # idempotent

    resumed = api.post("/studies/p/resume")
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "running"
    wait(lambda: len(_trials(api, "p")) == 3)


def test_pause_and_resume_refuse_finished_studies(api, make_spec) -> None:
    _create(api, make_spec, "done")
    assert api.post("/studies/done/stop").status_code == 200
    for action in ("pause", "resume"):
        response = api.post(f"/studies/done/{action}")
        assert response.status_code == 409, response.text
        assert "stopped" in response.json()["detail"]
    assert api.post("/studies/nope/pause").status_code == 404


def test_raising_the_budget_reopens_a_completed_study(api, make_spec, wait) -> None:
    _create(api, make_spec, "b", max_trials=1, max_parallel=1)
    (trial,) = wait(lambda: _trials(api, "b"))
    _run(api, trial, 0.7)
    wait(lambda: api.get("/studies/b").json()["status"] == "completed")

    raised = api.patch("/studies/b", json={"max_trials": 3})
    assert raised.status_code == 200, raised.text
    body = raised.json()
    assert body["max_trials"] == 3
    assert body["spec"]["budget"]["max_trials"] == 3
    assert body["status"] == "running"
    assert body["finished_at"] is None
    wait(lambda: len(_trials(api, "b")) == 2)


def test_budget_below_created_trials_is_422_and_changes_nothing(api, make_spec, wait) -> None:
    _create(api, make_spec, "low")
    wait(lambda: len(_trials(api, "low")) == 2)
    response = api.patch("/studies/low", json={"max_trials": 1})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "max_trials"
    assert api.get("/studies/low").json()["max_trials"] == 6
    for body, field in (
        ({"max_trials": 0}, "max_trials"),
        ({"max_parallel": "2"}, "max_parallel"),
        ({"max_budget": 3}, "max_budget"),
    ):
        bad = api.patch("/studies/low", json=body)
        assert bad.status_code == 422, body
        assert bad.json()["detail"][0]["field"] == field
    assert api.post("/studies/low/stop").status_code == 200
    assert api.patch("/studies/low", json={"max_trials": 9}).status_code == 409


def test_trials_sort_by_value_and_duration_with_nulls_last(api, make_spec, wait) -> None:
    _create(api, make_spec, "s", max_trials=4, max_parallel=4)
    queued = wait(lambda: len(_trials(api, "s")) == 4 and _trials(api, "s"))
    for trial, value in zip(queued[:3], (0.2, 0.9, 0.5), strict=True):
        _run(api, trial, value)
    by_value = _trials(api, "s", sort="value", order="desc")
    assert [t["value"] for t in by_value] == [0.9, 0.5, 0.2, None]
    ascending = _trials(api, "s", sort="value")
    assert [t["value"] for t in ascending] == [0.2, 0.5, 0.9, None]
    by_duration = _trials(api, "s", sort="duration", order="desc")
    assert by_duration[-1]["value"] is None  # never ran: no duration, last
    page = api.get("/studies/s/trials", params={"sort": "value", "limit": 2, "offset": 1})
    assert [t["value"] for t in page.json()] == [0.5, 0.9]
    assert page.headers["x-total-count"] == "4"
    bad = api.get("/studies/s/trials", params={"sort": "params"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "sort"
