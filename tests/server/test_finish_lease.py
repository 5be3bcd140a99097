"""A finish refills its study's freed slot in the same request, and with ``lease_next``
hands the finishing worker the new trial already started (no queue round trip, no start
request), but never while another trial has been waiting for a worker."""

from __future__ import annotations

import time

import httpx

from server.scheduler import LEASE_GRACE


def _study(api: httpx.Client, make_spec, name: str, max_trials: int = 3) -> None:
    spec = make_spec(name, budget={"max_trials": max_trials, "max_parallel": 1, "epochs": 1})
    assert api.post("/studies", json=spec).status_code == 201


def _queued(api: httpx.Client, wait, name: str) -> dict:
    return wait(
        lambda: next(
            (t for t in api.get(f"/studies/{name}/trials").json() if t["status"] == "queued"),
            None,
        )
    )


def _finish(api: httpx.Client, trial_id: int, attempt: int = 1, **extra) -> dict:
    body = {"attempt": attempt, "status": "completed", "value": 0.5, **extra}
    response = api.post(f"/trials/{trial_id}/finish", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_lease_next_hands_over_each_next_trial_started_until_the_budget_ends(
    api, make_spec, wait
) -> None:
    _study(api, make_spec, "chain")
    first = _queued(api, wait, "chain")
    assert api.post(f"/trials/{first['id']}/start", json={"worker": "host:7"}).status_code == 200

    done = _finish(api, first["id"], lease_next=True)
    assert done["status"] == "completed"
    nxt = done["next_trial"]
    assert nxt is not None
    assert (nxt["study"], nxt["number"], nxt["attempt"]) == ("chain", 1, 1)
    assert nxt["objective"]["metric"] == "val_accuracy"
    assert nxt["epochs"] == 1
    stored = api.get(f"/trials/{nxt['trial_id']}").json()
    assert (stored["status"], stored["attempt"], stored["worker"]) == ("running", 1, "host:7")
    # Leased, not queued: nobody else can start it.
    assert api.post(f"/trials/{nxt['trial_id']}/start", json={}).status_code == 409

    # A replayed finish (its answer was lost) leases nothing more: the slot is taken.
    assert _finish(api, first["id"], lease_next=True)["next_trial"] is None

    last = _finish(api, nxt["trial_id"], lease_next=True)["next_trial"]
    assert last["number"] == 2
    assert _finish(api, last["trial_id"], lease_next=True)["next_trial"] is None  # budget spent
    trials = api.get("/studies/chain/trials").json()
    assert [(t["number"], t["status"]) for t in trials] == [(n, "completed") for n in range(3)]
    wait(lambda: api.get("/studies/chain").json()["status"] == "completed")


def test_a_finish_refills_the_slot_in_the_request_and_without_lease_next_queues_it(
    api, make_spec, wait
) -> None:
    _study(api, make_spec, "plain")
    first = _queued(api, wait, "plain")
    api.post(f"/trials/{first['id']}/start", json={"worker": "host:1"})
    done = _finish(api, first["id"])
    assert done["next_trial"] is None
    # Right after the answer (no scheduler pass waited for), the next trial is queued.
    trials = api.get("/studies/plain/trials").json()
    assert [(t["number"], t["status"]) for t in trials] == [(0, "completed"), (1, "queued")]


def test_no_lease_while_another_trial_waits_for_a_worker(api, make_spec, wait) -> None:
    _study(api, make_spec, "busy")
    first = _queued(api, wait, "busy")
    api.post(f"/trials/{first['id']}/start", json={"worker": "host:2"})
    _study(api, make_spec, "waiting")  # its trial waits: no worker takes it
    waiting = _queued(api, wait, "waiting")
    time.sleep(LEASE_GRACE + 0.2)

    done = _finish(api, first["id"], lease_next=True)
    assert done["next_trial"] is None  # back to the queue, where "waiting" is first
    trials = api.get("/studies/busy/trials").json()
    assert [(t["number"], t["status"]) for t in trials] == [(0, "completed"), (1, "queued")]

    # Once nothing waits, leasing resumes.
    api.post(f"/trials/{waiting['id']}/start", json={"worker": "host:3"})
    second = trials[1]
    api.post(f"/trials/{second['id']}/start", json={"worker": "host:2"})
    assert _finish(api, second["id"], lease_next=True)["next_trial"]["number"] == 2


def test_a_stopped_study_leases_nothing(api, make_spec, wait) -> None:
    _study(api, make_spec, "halt")
    first = _queued(api, wait, "halt")
    api.post(f"/trials/{first['id']}/start", json={"worker": "host:4"})
    assert api.post("/studies/halt/stop").status_code == 200
    done = api.post(
        f"/trials/{first['id']}/finish",
        json={"attempt": 1, "status": "pruned", "lease_next": True},
    ).json()
    assert (done["status"], done["next_trial"]) == ("stopped", None)
    assert len(api.get("/studies/halt/trials").json()) == 1
