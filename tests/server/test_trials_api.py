"""The worker side over real HTTP: start leases an attempt, reports are idempotent and
fenced, finish validates the value, a stopped study answers ``stop``."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from hpo.embedded import EmbeddedService
from server.tables import Report


def _first_trial(api: httpx.Client, make_spec, wait, name: str = "t", **budget) -> dict:
    spec = make_spec(name, budget={"max_trials": 3, "max_parallel": 1, "epochs": 3, **budget})
    assert api.post("/studies", json=spec).status_code == 201
    return wait(lambda: (api.get(f"/studies/{name}/trials").json() or [None])[0])


def _report(api: httpx.Client, trial_id: int, attempt: int, step: int, value: float = 0.5):
    return api.post(
        f"/trials/{trial_id}/reports",
        json={"attempt": attempt, "step": step, "value": value, "metrics": {"val_loss": 1.0}},
    )


def test_start_returns_spec_and_attempt_then_refuses_a_second_start(api, make_spec, wait) -> None:
    trial = _first_trial(api, make_spec, wait)
    assert trial["status"] == "queued"
    started = api.post(f"/trials/{trial['id']}/start", json={"worker": "host:1"})
    assert started.status_code == 200, started.text
    spec = started.json()
    assert spec["attempt"] == 1
    assert spec["epochs"] == 3
    assert set(spec["params"]) >= {"lr", "batch_size", "units"}
    assert spec["train"]["dataset"] == "synthetic"
    assert spec["objective"]["metric"] == "val_accuracy"
    again = api.post(f"/trials/{trial['id']}/start", json={})
    assert again.status_code == 409
    detail = api.get(f"/trials/{trial['id']}").json()
    assert detail["status"] == "running"
    assert detail["worker"] == "host:1"


def test_reports_are_idempotent_per_trial_attempt_step(
    api, make_spec, wait, live_server: EmbeddedService
) -> None:
    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    for step in (2, 1, 2, 1, 3, 3):  # replays, out of order
        response = _report(api, trial["id"], 1, step)
        assert response.status_code == 200
        assert response.json()["decision"] == "continue"
    engine = create_engine(live_server.settings.resolved_database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Report.step, func.count())
            .where(Report.trial_id == trial["id"])
            .group_by(Report.step)
        ).all()
    engine.dispose()
    assert sorted(rows) == [(1, 1), (2, 1), (3, 1)]
    detail = api.get(f"/trials/{trial['id']}").json()
    assert [r["step"] for r in detail["reports"]] == [1, 2, 3]
    assert detail["last_step"] == 3


def test_report_and_finish_from_another_attempt_get_409(api, make_spec, wait) -> None:
    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    stale = _report(api, trial["id"], 2, 1)
    assert stale.status_code == 409
    assert stale.json()["field"] == "attempt"
    finish = api.post(
        f"/trials/{trial['id']}/finish", json={"attempt": 7, "status": "completed", "value": 1.0}
    )
    assert finish.status_code == 409


def test_finish_completed_stores_value_and_is_idempotent(api, make_spec, wait) -> None:
    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    body = {"attempt": 1, "status": "completed", "value": 0.91}
    first = api.post(f"/trials/{trial['id']}/finish", json=body)
    assert first.status_code == 200
    assert first.json()["status"] == "completed"
    assert first.json()["value"] == pytest.approx(0.91)
    assert api.post(f"/trials/{trial['id']}/finish", json=body).status_code == 200
    assert _report(api, trial["id"], 1, 4).status_code == 409  # closed after finish
    study = api.get("/studies/t").json()
    assert study["best_trial"]["number"] == trial["number"]


@pytest.mark.parametrize("value", [math.nan, math.inf, None])
def test_finish_without_a_finite_value_fails_the_trial_with_the_reason(
    api, make_spec, wait, value
) -> None:
    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    payload = json.dumps({"attempt": 1, "status": "completed", "value": value})
    response = api.post(
        f"/trials/{trial['id']}/finish",
        content=payload,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200
    out = response.json()
    assert out["status"] == "failed"
    assert out["value"] is None
    assert out["error"]


@pytest.mark.parametrize(
    "body",
    [
        '{"attempt": 1, "step": 1, "value": NaN, "metrics": {"val_loss": NaN}}',
        '{"attempt": 1, "step": 1, "value": Infinity}',
        '{"attempt": 1, "step": 1, "metrics": {"val_accuracy": NaN}}',
    ],
)
def test_a_report_that_is_not_finite_fails_the_trial_as_diverged(
    api, make_spec, wait, body
) -> None:
    """The REST path keeps the README's promise: NaN/inf fails the trial as ``training
    diverged`` (the report is kept, its value null) and the runner is told to stop."""
    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    response = api.post(
        f"/trials/{trial['id']}/reports",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["decision"] == "stop" and "training diverged" in answer["reason"]
    detail = api.get(f"/trials/{trial['id']}").json()
    assert detail["status"] == "failed" and "training diverged" in detail["error"]
    assert [r["value"] for r in detail["reports"]] == [None]
    assert _report(api, trial["id"], 1, 2).status_code == 409  # closed
    finish = {"attempt": 1, "status": "failed", "error": "diverged"}
    assert api.post(f"/trials/{trial['id']}/finish", json=finish).status_code == 200


def test_a_report_without_a_value_takes_the_objective_from_its_metrics(
    api, make_spec, wait
) -> None:
    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    body = {"attempt": 1, "step": 1, "metrics": {"val_accuracy": 0.75, "val_loss": 0.4}}
    assert api.post(f"/trials/{trial['id']}/reports", json=body).status_code == 200
    report = api.get(f"/trials/{trial['id']}").json()["reports"][0]
    assert report["value"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("reports", {"attempt": 1, "step": 1, "metrics": {"val_loss": 0.4}}, "value"),
        ("reports", {"attempt": 1, "step": 1}, "value"),
        (
            "reports/batch",
            {"reports": [{"attempt": 1, "step": 1, "value": 0.5}, {"attempt": 1, "step": 2}]},
            "reports.1.value",
        ),
        (
            "finish",
            {
                "attempt": 1,
                "status": "completed",
                "value": 0.5,
                "reports": [{"attempt": 1, "step": 1}],
            },
            "reports.0.value",
        ),
    ],
)
def test_a_report_with_no_objective_is_422_naming_the_field(
    api, make_spec, wait, path, body, field
) -> None:
    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    response = api.post(f"/trials/{trial['id']}/{path}", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == field
    detail = api.get(f"/trials/{trial['id']}").json()
    assert detail["reports"] == [] and detail["status"] == "running"  # nothing half-written


def test_a_finish_carrying_a_diverged_report_fails_the_trial(api, make_spec, wait) -> None:
    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    payload = (
        '{"attempt": 1, "status": "completed", "value": 0.5, "reports": '
        '[{"attempt": 1, "step": 1, "value": 0.5}, {"attempt": 1, "step": 2, "value": NaN}]}'
    )
    response = api.post(
        f"/trials/{trial['id']}/finish",
        content=payload,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert "training diverged" in response.json()["error"]


def test_stopped_study_answers_stop_and_pruned_finish_becomes_stopped(api, make_spec, wait) -> None:
    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    api.post("/studies/t/stop")
    answer = _report(api, trial["id"], 1, 1).json()
    assert answer["decision"] == "stop"
    finished = api.post(
        f"/trials/{trial['id']}/finish", json={"attempt": 1, "status": "pruned", "value": 0.5}
    ).json()
    assert finished["status"] == "stopped"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("reports", {"attempt": 0, "step": 1}, "attempt"),
        ("reports", {"attempt": 1, "step": -1}, "step"),
        ("reports", {"attempt": 1, "step": 1, "extra": 1}, "extra"),
        ("finish", {"attempt": 1, "status": "exploded"}, "status"),
        ("finish", {"attempt": 1, "status": "failed", "error": "bad\x00"}, "error"),
        ("reports", {"attempt": 1, "step": 1, "metrics": {"s": "\ud800"}}, "metrics.s"),
        ("reports", {"attempt": True, "step": 1}, "attempt"),
        ("reports", {"attempt": 1, "step": 1, "value": 1.0, "checkpoint": "/etc"}, "checkpoint"),
        (
            "reports",
            {"attempt": 1, "step": 1, "value": 1.0, "checkpoint": "../other/trial-0"},
            "checkpoint",
        ),
    ],
)
def test_bad_worker_bodies_are_422_naming_the_field(
    api, make_spec, wait, path, body, field
) -> None:
    trial = _first_trial(api, make_spec, wait)
    response = api.post(  # json.dumps escapes lone surrogates as a client might send them
        f"/trials/{trial['id']}/{path}",
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == field


def test_unknown_trial_is_404(api) -> None:
    assert api.post("/trials/999999/start", json={}).status_code == 404
    assert api.get("/trials/999999").status_code == 404


def test_concurrent_starts_and_replayed_reports_never_race_into_errors(
    api, make_spec, wait, live_server: EmbeddedService
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    trial = _first_trial(api, make_spec, wait, name="race")
    url = f"{live_server.url}/api/v1/trials/{trial['id']}"

    def start(_: int) -> int:
        return httpx.post(f"{url}/start", json={}, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(start, range(8)))
    assert sorted(codes) == [200] + [409] * 7

    def report(step: int) -> int:
        body = {"attempt": 1, "step": step % 5, "value": 0.1}
        return httpx.post(f"{url}/reports", json=body, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(report, range(40)))
    assert codes == [200] * 40
    steps = [r["step"] for r in api.get(f"/trials/{trial['id']}").json()["reports"]]
    assert steps == [0, 1, 2, 3, 4]


def test_heartbeat_renews_the_lease_and_fences_old_attempts(api, make_spec, wait) -> None:
    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    beat = api.post(f"/trials/{trial['id']}/heartbeat", json={"attempt": 1})
    assert beat.status_code == 200
    assert beat.json()["decision"] == "continue"
    assert api.post(f"/trials/{trial['id']}/heartbeat", json={"attempt": 2}).status_code == 409
    api.post("/studies/t/stop")
    assert (
        api.post(f"/trials/{trial['id']}/heartbeat", json={"attempt": 1}).json()["decision"]
        == "stop"
    )


def test_release_hands_the_trial_back_without_counting_a_failure(api, make_spec, wait) -> None:
    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    _report(api, trial["id"], 1, 1)
    released = api.post(f"/trials/{trial['id']}/release", json={"attempt": 1, "reason": "SIGTERM"})
    assert released.status_code == 200
    body = released.json()
    assert (body["status"], body["failures"]) == ("queued", 0)
    assert "SIGTERM" in body["error"]
    assert _report(api, trial["id"], 1, 2).status_code == 409  # the old attempt is over
    again = api.post(f"/trials/{trial['id']}/start", json={}).json()
    assert again["attempt"] == 2


def test_every_report_replayed_three_times_out_of_order_is_stored_once(
    api, make_spec, wait, live_server: EmbeddedService
) -> None:
    import random

    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    for step in range(1, 4):
        _report(api, trial["id"], 1, step, value=step / 10)
    api.post(f"/trials/{trial['id']}/release", json={"attempt": 1})
    api.post(f"/trials/{trial['id']}/start", json={})  # attempt 2
    sent = [(2, step) for step in range(1, 6)]
    replays = sent * 3
    random.Random(7).shuffle(replays)
    for attempt, step in replays:
        assert _report(api, trial["id"], attempt, step, value=step / 10).status_code == 200
    for step in range(1, 4):  # the old attempt's reports are refused
        assert _report(api, trial["id"], 1, step).status_code == 409
    engine = create_engine(live_server.settings.resolved_database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Report.attempt, Report.step, func.count())
            .where(Report.trial_id == trial["id"])
            .group_by(Report.attempt, Report.step)
        ).all()
    engine.dispose()
    assert sorted(rows) == [(1, s, 1) for s in range(1, 4)] + [(2, s, 1) for s in range(1, 6)]


def test_workers_register_and_list_with_current_trials(api, make_spec, wait) -> None:
    trial = _first_trial(api, make_spec, wait)
    body = {
        "name": "gpu-host:42",
        "host": "gpu-host",
        "pid": 42,
        "devices": ["0"],
        "status": "idle",
    }
    registered = api.post("/workers", json=body)
    assert registered.status_code == 200, registered.text
    api.post(f"/trials/{trial['id']}/start", json={"worker": "gpu-host:42"})
    (listed,) = api.get("/workers").json()
    assert listed["name"] == "gpu-host:42"
    assert listed["devices"] == ["0"]
    assert listed["current_trials"] == [trial["id"]]
    assert listed["status"] == "busy"
    assert listed["stale"] is False
    bad = api.post("/workers", json={**body, "pid": -1})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "pid"


def test_a_completed_finish_without_a_value_takes_the_last_reported_one(
    api, make_spec, wait
) -> None:
    """A retry that resumed at the trial's last step reports nothing of its own: its
    finish completes with the value an earlier attempt reported at that step."""
    trial = _first_trial(api, make_spec, wait)
    api.post(f"/trials/{trial['id']}/start", json={})
    for step, value in ((1, 0.4), (2, 0.6)):
        assert _report(api, trial["id"], 1, step, value).status_code == 200
    released = api.post(f"/trials/{trial['id']}/release", json={"attempt": 1})
    assert released.json()["status"] == "queued"
    assert api.post(f"/trials/{trial['id']}/start", json={}).json()["attempt"] == 2
    body = {"attempt": 2, "status": "completed"}
    done = api.post(f"/trials/{trial['id']}/finish", json=body)
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["value"]) == ("completed", pytest.approx(0.6))
    again = api.post(f"/trials/{trial['id']}/finish", json=body)  # a repeat: the same
    assert again.json()["value"] == pytest.approx(0.6)
