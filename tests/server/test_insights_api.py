"""Insight endpoints over real HTTP, on SQLite and PostgreSQL: optimization history
(best so far, sampling, conditional parameters), learning curves (latest attempt per
step, downsampling, trial choice), parameter importance, and their 404/422 answers.

Trials are written straight into the live server's database (a stopped study, so the
scheduler adds none): the endpoints only read, and exact data makes exact assertions.
"""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, delete, insert, select

from hpo.embedded import EmbeddedService
from server.tables import Report, Study, Trial

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _trial(number: int, value: float | None, status: str = "completed", **extra: Any) -> dict:
    """A trial row: started at T0 + number minutes, finished 10 s later unless running
    or queued; ``params`` defaults to ``{"lr": 0.01}``."""
    started = None if status == "queued" else T0 + timedelta(minutes=number)
    done = status not in ("queued", "running")
    return {
        "number": number,
        "status": status,
        "value": value,
        "params": extra.pop("params", {"lr": 0.01, "batch_size": 32, "units": 16}),
        "info": extra.pop("info", {}),
        "attempt": extra.pop("attempt", 1),
        "started_at": started,
        "finished_at": started + timedelta(seconds=10) if started and done else None,
        **extra,
    }


def _seed(
    api: httpx.Client,
    server: EmbeddedService,
    spec: dict,
    trials: list[dict],
    reports: dict[int, list[tuple[int, int, float | None]]] | None = None,
) -> dict[int, int]:
    """Create the study over the API, stop it, replace its trials with ``trials`` and
    add ``reports`` ({number: [(attempt, step, value)]}); returns number -> trial id."""
    created = api.post("/studies", json=spec)
    assert created.status_code == 201, created.text
    assert api.post(f"/studies/{spec['name']}/stop").status_code == 200
    engine = create_engine(server.settings.resolved_database_url)
    try:
        with engine.begin() as conn:
            study_id = conn.scalar(select(Study.id).where(Study.name == spec["name"]))
            old = select(Trial.id).where(Trial.study_id == study_id)
            conn.execute(delete(Report).where(Report.trial_id.in_(old)))
            conn.execute(delete(Trial).where(Trial.study_id == study_id))
            rows = [{"study_id": study_id, "created_at": T0, "failures": 0, **t} for t in trials]
            if rows:
                conn.execute(insert(Trial), rows)
            ids = dict(
                conn.execute(select(Trial.number, Trial.id).where(Trial.study_id == study_id)).all()
            )
            report_rows = [
                {"trial_id": ids[n], "attempt": a, "step": s, "value": v, "metrics": {}}
                for n, points in (reports or {}).items()
                for a, s, v in points
            ]
            if report_rows:
                conn.execute(insert(Report), [{**r, "created_at": T0} for r in report_rows])
    finally:
        engine.dispose()
    return ids


def _get(api: httpx.Client, path: str, **params: Any) -> dict:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _best_so_far(values, statuses, direction: str) -> list[float | None]:
    best, out = None, []
    for value, status in zip(values, statuses, strict=True):
        if status == "completed" and value is not None:
            if best is None or (value > best if direction == "maximize" else value < best):
                best = value
        out.append(best)
    return out


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ("maximize", [None, 0.3, 0.3, 0.4, 0.4, 0.7, 0.7, 0.8]),
        ("minimize", [None, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.2]),
    ],
)
def test_history_best_so_far_follows_the_direction(
    api, live_server, make_spec, direction, expected
) -> None:
    spec = make_spec("h", objective={"metric": "val_loss", "direction": direction})
    trials = [
        _trial(0, None, "failed"),
        _trial(1, 0.3),
        _trial(2, 0.9, "pruned"),  # a pruned value never counts as best
        _trial(3, 0.4),
        _trial(4, 0.35),
        _trial(5, 0.7),
        _trial(6, None, "running"),
        _trial(7, 0.8 if direction == "maximize" else 0.2),
    ]
    _seed(api, live_server, spec, trials)
    out = _get(api, "/studies/h/history")
    assert out["study"] == "h"
    assert out["metric"] == "val_loss"
    assert out["direction"] == direction
    assert out["total"] == 8
    assert out["sampled"] is False
    assert out["numbers"] == list(range(8))
    assert out["statuses"] == [t["status"] for t in trials]
    assert out["values"] == [t["value"] for t in trials]
    assert out["best_so_far"] == pytest.approx(expected)
    assert out["durations"][1] == pytest.approx(10.0, abs=0.01)
    assert out["durations"][6] is None  # running: not finished
    assert list(out["params"]) == ["lr", "batch_size", "units"]  # the space's order
    assert out["params"]["batch_size"] == [32] * 8


def test_history_sample_keeps_every_improvement_and_the_best(api, live_server, make_spec) -> None:
    rng = random.Random(3)
    improvers = [0, 37, 111, 222, 444, 471]
    values = {n: 0.1 + 0.1 * i for i, n in enumerate(improvers)}
    trials = []
    for n in range(500):
        value = values.get(n, round(rng.uniform(0.0, 0.09), 4))
        if n == 488:
            value = values[471]  # ties the best: a best trial too, not an improvement
        status = "completed" if n in values or n == 488 or n % 7 else "pruned"
        trials.append(_trial(n, value, status))
    _seed(api, live_server, make_spec("big"), trials)
    out = _get(api, "/studies/big/history", max_points=50)
    numbers = out["numbers"]
    assert out["total"] == 500
    assert out["sampled"] is True
    assert len(numbers) == 50
    assert numbers == sorted(set(numbers))
    assert set(improvers) | {488} <= set(numbers)
    # The others are spread over the whole range, evenly.
    assert numbers[0] == 0 and numbers[-1] >= 490
    assert max(b - a for a, b in itertools.pairwise(numbers)) <= 25
    full = _best_so_far(
        [t["value"] for t in trials], [t["status"] for t in trials], "maximize"
    )  # over ALL trials, not only the returned ones
    assert out["best_so_far"] == pytest.approx([full[n] for n in numbers])
    assert out["values"] == [trials[n]["value"] for n in numbers]
    assert all(len(column) == 50 for column in out["params"].values())

    everything = _get(api, "/studies/big/history", max_points=500)
    assert everything["sampled"] is False
    assert everything["numbers"] == list(range(500))


def test_history_conditional_parameters_are_null_when_inactive(api, live_server, make_spec) -> None:
    space = {
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
        "momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"optimizer": "sgd"}},
        "decay": {"type": "float", "low": 1e-5, "high": 1e-2, "when": {"optimizer": "adam"}},
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    }
    trials = [
        _trial(0, 0.5, params={"optimizer": "sgd", "momentum": 0.9, "lr": 0.01}),
        _trial(1, 0.6, params={"optimizer": "adam", "decay": 0.001, "lr": 0.02}),
        _trial(2, None, "queued", params={"optimizer": "adam", "decay": 0.002, "lr": 0.001}),
    ]
    _seed(api, live_server, make_spec("cond", space=space), trials)
    params = _get(api, "/studies/cond/history")["params"]
    assert list(params) == ["optimizer", "momentum", "decay", "lr"]
    assert params["optimizer"] == ["sgd", "adam", "adam"]
    assert params["momentum"] == [0.9, None, None]
    assert params["decay"] == [None, 0.001, 0.002]
    assert params["lr"] == pytest.approx([0.01, 0.02, 0.001])


def test_curves_use_the_latest_attempt_per_step_and_keep_first_and_last(
    api, live_server, make_spec
) -> None:
    # Attempt 1 reported steps 1..10, then was lost; attempt 2 resumed at step 5.
    first = [(1, s, 0.01 * s) for s in range(1, 11)]
    second = [(2, s, 0.5 + 0.01 * s) for s in range(5, 41)]
    second[20] = (2, 25, 9.0)  # a spike the downsampled curve must show
    trials = [
        _trial(0, 0.9, attempt=2, info={"rung": 1, "budget": 40, "parent": 3}),
        _trial(1, None, "queued"),  # no reports: not a curve
        _trial(2, 0.2, "pruned", info={"rung": 0, "budget": 9}),
    ]
    reports = {0: first + second, 2: [(1, 1, 0.1), (1, 2, None), (1, 3, 0.2)]}
    _seed(api, live_server, make_spec("c"), trials, reports)

    full = _get(api, "/studies/c/curves", max_points=1000)
    assert full["total"] == 2
    assert full["sampled"] is False
    assert [c["number"] for c in full["curves"]] == [0, 2]
    curve = full["curves"][0]
    assert (curve["status"], curve["budget"], curve["rung"]) == ("completed", 40, 1)
    expected = {s: v for _a, s, v in first} | {s: v for _a, s, v in second}
    assert curve["steps"] == list(range(1, 41))
    assert curve["values"] == pytest.approx([expected[s] for s in range(1, 41)])
    assert full["curves"][1] == {
        "number": 2,
        "status": "pruned",
        "budget": 9,
        "rung": 0,
        "steps": [1, 2, 3],
        "values": [0.1, None, 0.2],
    }

    short = _get(api, "/studies/c/curves", max_points=8)
    assert short["sampled"] is True
    curve = short["curves"][0]
    steps = curve["steps"]
    assert 2 < len(steps) <= 8
    assert steps[0] == 1 and steps[-1] == 40
    assert steps == sorted(set(steps))
    assert 25 in steps  # the spike: the highest value of its bucket
    assert curve["values"] == pytest.approx([expected[s] for s in steps])
    assert short["curves"][1]["steps"] == [1, 2, 3]  # short curves are untouched

    two = _get(api, "/studies/c/curves", max_points=2)["curves"][0]
    assert two["steps"] == [1, 40]


def test_curves_choose_the_best_running_and_a_spread_of_trials(api, live_server, make_spec) -> None:
    trials, reports = [], {}
    for n in range(40):
        status = "running" if n in (17, 39) else "completed"
        value = None if status == "running" else round(0.01 * ((n * 7) % 40), 2)
        trials.append(_trial(n, value, status))
        reports[n] = [(1, s, 0.1 * s) for s in range(1, 4)]
    _seed(api, live_server, make_spec("many"), trials, reports)
    out = _get(api, "/studies/many/curves", max_trials=12)
    numbers = [c["number"] for c in out["curves"]]
    assert out["total"] == 40
    assert out["sampled"] is True
    assert len(numbers) == 12
    assert numbers == sorted(numbers)
    best = sorted((t for t in trials if t["status"] == "completed"), key=lambda t: -t["value"])[
        :3
    ]  # a quarter of the slots
    assert {t["number"] for t in best} <= set(numbers)
    assert {17, 39} <= set(numbers)
    assert numbers[0] <= 3  # the spread reaches the start of the study


def test_importance_ranks_the_parameter_that_drives_the_objective(
    api, live_server, make_spec
) -> None:
    rng = random.Random(0)
    trials = []
    for n in range(60):
        params = {
            "lr": 10 ** rng.uniform(-3, -1),
            "batch_size": rng.choice([32, 64]),
            "units": rng.randint(8, 32),
        }
        value = -((params["lr"] - 0.02) ** 2) * 1e4 + rng.gauss(0, 0.01)
        trials.append(_trial(n, value, params=params))
    trials.append(_trial(60, None, "failed"))
    _seed(api, live_server, make_spec("imp"), trials)
    out = _get(api, "/studies/imp/importance")
    assert out["n_trials"] == 60
    assert out["reason"] is None
    assert out["method"]
    names = [i["param"] for i in out["importances"]]
    shares = [i["importance"] for i in out["importances"]]
    assert sorted(names) == ["batch_size", "lr", "units"]
    assert names[0] == "lr"
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) == pytest.approx(1.0)
    assert shares[0] > 0.5
    assert _get(api, "/studies/imp/importance") == out  # deterministic (and cached)


def test_importance_explains_why_it_is_empty(api, live_server, make_spec) -> None:
    _seed(api, live_server, make_spec("few"), [_trial(n, 0.1 * n) for n in range(3)])
    few = _get(api, "/studies/few/importance")
    assert few["importances"] == [] and few["n_trials"] == 3
    assert "at least 4" in few["reason"]
    _seed(api, live_server, make_spec("flat"), [_trial(n, 0.5) for n in range(6)])
    flat = _get(api, "/studies/flat/importance")
    assert flat["importances"] == [] and flat["n_trials"] == 6
    assert "constant" in flat["reason"]


def test_empty_study_answers_empty_plot_data(api, live_server, make_spec) -> None:
    _seed(api, live_server, make_spec("empty"), [])
    history = _get(api, "/studies/empty/history")
    assert history["total"] == 0 and history["numbers"] == []
    assert history["params"] == {"lr": [], "batch_size": [], "units": []}
    assert _get(api, "/studies/empty/curves") == {"total": 0, "sampled": False, "curves": []}


@pytest.mark.parametrize("endpoint", ["history", "curves", "importance"])
def test_unknown_study_is_404(api, endpoint) -> None:
    response = api.get(f"/studies/nope/{endpoint}")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("history", {"max_points": 9}, "max_points"),
        ("history", {"max_points": 20_001}, "max_points"),
        ("history", {"max_points": "many"}, "max_points"),
        ("curves", {"max_trials": 0}, "max_trials"),
        ("curves", {"max_trials": 1001}, "max_trials"),
        ("curves", {"max_points": 1}, "max_points"),
    ],
)
def test_bad_query_parameters_are_422_naming_the_field(api, make_spec, path, params, field) -> None:
    assert api.post("/studies", json=make_spec("q")).status_code == 201
    response = api.get(f"/studies/q/{path}", params=params)
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["detail"]] == [field]


def test_openapi_documents_the_response_models(live_server) -> None:
    schema = httpx.get(f"{live_server.url}/openapi.json").json()
    for path, model in [
        ("history", "StudyHistory"),
        ("curves", "StudyCurves"),
        ("importance", "StudyImportance"),
    ]:
        get = schema["paths"][f"/api/v1/studies/{{name}}/{path}"]["get"]
        ref = get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith(f"/{model}")
    assert "best_so_far" in schema["components"]["schemas"]["StudyHistory"]["properties"]
