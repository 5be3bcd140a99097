"""A finish refills its study's freed slot in the same request, and with ``lease_next``
hands the finishing worker the new trial already started (no queue round trip, no start
request), but never while another trial has been waiting for a worker. A repeat of that
finish (its answer lost) gets the same trial again while the worker never touched it,
and never another worker's."""

from __future__ import annotations

import time

import httpx

from server.refill import LEASE_GRACE


def _study(
    api: httpx.Client, make_spec, name: str, max_trials: int = 3, max_parallel: int = 1
) -> None:
    budget = {"max_trials": max_trials, "max_parallel": max_parallel, "epochs": 1}
    spec = make_spec(name, budget=budget)
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

    # A replayed finish (its answer was lost) leases nothing more: it gets the same one.
    assert _finish(api, first["id"], lease_next=True)["next_trial"] == nxt

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


def _trials(api: httpx.Client, name: str) -> list[tuple[int, str, int, str | None]]:
    return [
        (t["number"], t["status"], t["attempt"], t["worker"])
        for t in api.get(f"/studies/{name}/trials").json()
    ]


def test_a_finish_repeated_after_its_answer_was_lost_gets_the_same_next_trial(
    api, make_spec, wait
) -> None:
    _study(api, make_spec, "lost", max_trials=4)
    first = _queued(api, wait, "lost")
    api.post(f"/trials/{first['id']}/start", json={"worker": "host:8"})
    handed = _finish(api, first["id"], lease_next=True)["next_trial"]  # the answer "lost"
    assert handed is not None

    for _ in range(2):  # the worker's retries, each answer lost too but the last
        again = _finish(api, first["id"], lease_next=True)
        assert again["status"] == "completed"
        assert again["next_trial"] == handed  # the same lease: trial, attempt 1, spec
    # Handed again, not leased again: nothing new was created or started.
    assert _trials(api, "lost") == [(0, "completed", 1, "host:8"), (1, "running", 1, "host:8")]

    # Without lease_next, or with another outcome, it is not this finish repeated.
    assert _finish(api, first["id"])["next_trial"] is None
    assert _finish(api, first["id"], value=0.7, lease_next=True)["next_trial"] is None
    failed = _finish(api, first["id"], status="failed", value=None, lease_next=True)
    assert (failed["status"], failed["next_trial"]) == ("completed", None)

    # The worker runs it: it goes on as any trial leased with a finish.
    assert _finish(api, handed["trial_id"], lease_next=True)["next_trial"]["number"] == 2


def test_a_repeated_finish_hands_nothing_the_worker_already_touched(api, make_spec, wait) -> None:
    _study(api, make_spec, "touched", max_trials=4)
    first = _queued(api, wait, "touched")
    api.post(f"/trials/{first['id']}/start", json={"worker": "host:9"})
    beaten = _finish(api, first["id"], lease_next=True)["next_trial"]
    assert _finish(api, first["id"], lease_next=True)["next_trial"] == beaten
    # It heartbeats: it knew of the trial, so a late copy of the finish is stale.
    assert api.post(f"/trials/{beaten['trial_id']}/heartbeat", json={"attempt": 1}).is_success
    assert _finish(api, first["id"], lease_next=True)["next_trial"] is None

    reported = _finish(api, beaten["trial_id"], lease_next=True)["next_trial"]
    assert _finish(api, beaten["trial_id"], lease_next=True)["next_trial"] == reported
    report = {"attempt": 1, "step": 1, "value": 0.4}
    assert api.post(f"/trials/{reported['trial_id']}/reports", json=report).is_success
    assert _finish(api, beaten["trial_id"], lease_next=True)["next_trial"] is None

    # Neither was handed twice nor restarted.
    assert _trials(api, "touched") == [
        (0, "completed", 1, "host:9"),
        (1, "completed", 1, "host:9"),
        (2, "running", 1, "host:9"),
    ]


def test_a_repeated_finish_never_gets_a_trial_handed_to_another_worker(
    api, make_spec, wait
) -> None:
    _study(api, make_spec, "pair", max_trials=6, max_parallel=2)
    first = _queued(api, wait, "pair")
    ids = wait(lambda: [t["id"] for t in api.get("/studies/pair/trials").json()][1:])
    api.post(f"/trials/{first['id']}/start", json={"worker": "host:a"})
    api.post(f"/trials/{ids[0]}/start", json={"worker": "host:b"})

    # b's finish hands it trial 2, which it heartbeats (its answer arrived) ...
    to_b = _finish(api, ids[0], lease_next=True)["next_trial"]
    assert api.post(f"/trials/{to_b['trial_id']}/heartbeat", json={"attempt": 1}).is_success
    # ... then a's finish hands a trial 3, untouched, its answer lost.
    to_a = _finish(api, first["id"], lease_next=True)["next_trial"]
    assert (to_b["number"], to_a["number"]) == (2, 3)

    # A late copy of b's finish: trial 3 is a's, started after b's finish and never
    # touched, yet not b's to run.
    assert _finish(api, ids[0], lease_next=True)["next_trial"] is None
    assert _finish(api, first["id"], lease_next=True)["next_trial"] == to_a  # a's, to a
    assert _trials(api, "pair")[2:] == [(2, "running", 1, "host:b"), (3, "running", 1, "host:a")]


def test_a_trial_started_from_the_queue_is_never_handed_by_a_repeated_finish(
    api, make_spec, wait
) -> None:
    _study(api, make_spec, "queued", max_trials=4)
    first = _queued(api, wait, "queued")
    api.post(f"/trials/{first['id']}/start", json={"worker": "host:c"})
    assert _finish(api, first["id"])["next_trial"] is None  # no lease: trial 1 is queued
    second = _queued(api, wait, "queued")
    # Started through the queue (even by the same worker): it knows of this one.
    assert api.post(f"/trials/{second['id']}/start", json={"worker": "host:c"}).is_success
    assert _finish(api, first["id"], lease_next=True)["next_trial"] is None
