"""Ask/tell over real HTTP: suggest leases trials to a caller the service does not
control; the caller reports and finishes them; leases expire like a worker's."""

from __future__ import annotations

import httpx

from hpo.embedded import EmbeddedService
from hpo.settings import Settings


def _study(api: httpx.Client, make_spec, name: str, **budget) -> None:
    spec = make_spec(
        name,
        budget={"max_trials": 4, "max_parallel": 1, "epochs": 2, **budget},
        runner="external",
    )
    assert api.post("/studies", json=spec).status_code == 201


def test_suggest_leases_distinct_trials_within_the_budget(api, make_spec, wait) -> None:
    _study(api, make_spec, "at")
    assert api.get("/studies/at").json()["runner"] == "external"
    leased = api.post("/studies/at/suggest", params={"count": 3, "client": "my-runner"})
    assert leased.status_code == 200, leased.text
    specs = leased.json()
    assert len(specs) == 3
    assert len({s["number"] for s in specs}) == 3
    assert all(s["attempt"] == 1 and s["epochs"] == 2 for s in specs)
    rows = {t["number"]: t for t in api.get("/studies/at/trials").json()}
    assert all(rows[s["number"]]["status"] == "running" for s in specs)
    assert all(rows[s["number"]]["worker"] == "my-runner" for s in specs)

    # Tell: per-step reports, then finish, exactly as a worker would.
    first = specs[0]
    report = {"attempt": 1, "step": 1, "value": 0.4}
    assert api.post(f"/trials/{first['trial_id']}/reports", json=report).status_code == 200
    done = api.post(
        f"/trials/{first['trial_id']}/finish",
        json={"attempt": 1, "status": "completed", "value": 0.6},
    )
    assert done.json()["status"] == "completed"

    # Four trials in all: one more at most, then nothing.
    rest = api.post("/studies/at/suggest", params={"count": 5}).json()
    assert len(rest) == 1
    assert api.post("/studies/at/suggest").json() == []

    assert api.post("/studies/at/pause").status_code == 200
    paused = api.post("/studies/at/suggest")
    assert paused.status_code == 409
    for bad in ({"count": 0}, {"count": 101}, {"client": ""}):
        response = api.post("/studies/at/suggest", params=bad)
        assert response.status_code == 422
        assert response.json()["detail"][0]["field"] == next(iter(bad))
    assert api.post("/studies/nope/suggest").status_code == 404


def test_an_expired_lease_is_retried(sqlite_settings: Settings, make_spec, wait) -> None:
    settings = sqlite_settings.model_copy(
        update={"heartbeat_timeout": 1.0, "reconcile_interval": 0.2}
    )
    with (
        EmbeddedService(settings, workers=0) as service,
        httpx.Client(base_url=f"{service.url}/api/v1") as api,
    ):
        _study(api, make_spec, "lease", max_trials=1)
        (spec,) = api.post("/studies/lease/suggest").json()
        # The caller goes silent: the reaper hands the trial back with a new attempt.
        trial = wait(
            lambda: (
                (t := api.get(f"/trials/{spec['trial_id']}").json())["status"] == "queued" and t
            ),
            timeout=15,
        )
        assert trial["failures"] == 1
        late = api.post(
            f"/trials/{spec['trial_id']}/finish",
            json={"attempt": 1, "status": "completed", "value": 0.9},
        )
        assert late.status_code == 409  # the expired lease is fenced off
        (again,) = api.post("/studies/lease/suggest").json()
        assert again["trial_id"] == spec["trial_id"] and again["attempt"] == 2


def test_delete_removes_the_study_and_its_trials(api, make_spec, wait) -> None:
    _study(api, make_spec, "gone")
    (spec,) = api.post("/studies/gone/suggest").json()
    api.post(f"/trials/{spec['trial_id']}/reports", json={"attempt": 1, "step": 1, "value": 1})
    assert api.delete("/studies/gone").status_code == 204
    assert api.get("/studies/gone").status_code == 404
    assert api.get(f"/trials/{spec['trial_id']}").status_code == 404
    late = api.post(f"/trials/{spec['trial_id']}/reports", json={"attempt": 1, "step": 2})
    assert late.status_code == 404
    assert api.delete("/studies/gone").status_code == 404
    _study(api, make_spec, "gone")  # the name is free again


def test_a_study_run_by_workers_does_not_lease_through_suggest(api, make_spec) -> None:
    assert api.post("/studies", json=make_spec("by-workers")).status_code == 201
    refused = api.post("/studies/by-workers/suggest")
    assert refused.status_code == 409
    assert refused.json()["field"] == "runner"
    assert "runner: external" in refused.json()["detail"]


def test_no_worker_ever_runs_an_ask_tell_trial(sqlite_settings: Settings, make_spec, wait) -> None:
    """On a plain server with local workers, an external study's trials exist only as
    suggest leases them: the scheduler creates none for the workers, and a lease that
    expires waits for the next suggest instead of going to a worker."""
    import time

    settings = sqlite_settings.model_copy(
        update={"heartbeat_timeout": 1.0, "reconcile_interval": 0.2}
    )
    with (
        EmbeddedService(settings, workers=1) as service,
        httpx.Client(base_url=f"{service.url}/api/v1") as api,
    ):
        spec = make_spec(
            "outside",
            budget={"max_trials": 3, "max_parallel": 3, "epochs": 1},
            runner="external",
            # A training section no worker could run: a worker taking one would fail it.
            train={"entrypoint": "not_installed_anywhere.train:fit"},
            objective={"metric": "score", "direction": "maximize"},
        )
        assert api.post("/studies", json=spec).status_code == 201
        time.sleep(1.0)  # many scheduler passes
        assert api.get("/studies/outside/trials").json() == []
        (lease,) = api.post("/studies/outside/suggest", params={"client": "me"}).json()
        # The runner goes silent: the lease expires and the trial is retried...
        wait(lambda: api.get(f"/trials/{lease['trial_id']}").json()["status"] == "queued")
        time.sleep(1.0)  # ...but no worker takes it: it waits for a suggest
        trials = api.get("/studies/outside/trials").json()
        assert [(t["status"], t["worker"]) for t in trials] == [("queued", "me")]
        (again,) = api.post("/studies/outside/suggest", params={"client": "me"}).json()
        assert (again["trial_id"], again["attempt"]) == (lease["trial_id"], 2)
        finish = {"attempt": 2, "status": "completed", "value": 0.5}
        assert api.post(f"/trials/{again['trial_id']}/finish", json=finish).status_code == 200
        rows = api.get("/studies/outside/trials").json()
        assert [t["status"] for t in rows] == ["completed"]
        assert all(t["error"] is None or "no heartbeat" in t["error"] for t in rows)
