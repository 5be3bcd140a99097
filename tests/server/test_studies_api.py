"""Study routes over real HTTP against a migrated SQLite file: create, list, get, stop,
and every bad-input rule (4xx naming the field, nothing half-written)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from search import STRATEGIES


def _post(api: httpx.Client, spec: dict[str, Any]) -> httpx.Response:
    # json.dumps writes NaN/Infinity literals, as a careless client would.
    return api.post(
        "/studies", content=json.dumps(spec), headers={"content-type": "application/json"}
    )


def test_create_get_list_study(api: httpx.Client, make_spec) -> None:
    created = _post(api, make_spec("alpha"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "alpha"
    assert body["status"] == "running"
    assert body["strategy"] == "random"
    assert body["objective"] == {"metric": "val_accuracy", "direction": "maximize"}
    assert body["spec"]["strategy"]["seed"] == 1

    got = api.get("/studies/alpha")
    assert got.status_code == 200
    assert got.json()["id"] == body["id"]
    names = [s["name"] for s in api.get("/studies").json()]
    assert names == ["alpha"]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_is_selectable_by_name(
    api: httpx.Client, make_spec, wait, strategy: str
) -> None:
    """A study names any registered strategy; the service creates its trials with it
    (a multi-fidelity one gets its max_budget from budget.epochs and hands its first
    trial the bottom rung's epochs), a caller runs one, and the study goes on."""
    budget = {"max_trials": 3, "max_parallel": 1, "epochs": 3}
    spec = make_spec(
        "pick", strategy={"name": strategy, "seed": 3}, budget=budget, runner="external"
    )
    created = _post(api, spec)
    assert created.status_code == 201, created.text
    assert created.json()["strategy"] == strategy
    (lease,) = wait(lambda: api.post("/studies/pick/suggest").json())
    (row,) = api.get("/studies/pick/trials").json()
    assert lease["epochs"] == row["info"].get("budget", 3)
    if strategy in ("asha", "hyperband"):
        assert created.json()["spec"]["strategy"]["options"]["max_budget"] == 3
        assert row["info"]["rung"] == 0 and lease["epochs"] == 1
    done = api.post(
        f"/trials/{lease['trial_id']}/finish",
        json={"attempt": 1, "status": "completed", "value": 0.5},
    )
    assert done.status_code == 200, done.text
    (after,) = api.post("/studies/pick/suggest").json()  # the study goes on
    assert after["number"] == 1


def test_missing_seed_is_drawn_and_stored(api: httpx.Client, make_spec) -> None:
    spec = make_spec("seedless", strategy={"name": "random"})
    body = _post(api, spec).json()
    assert isinstance(body["spec"]["strategy"]["seed"], int)
    again = api.get("/studies/seedless").json()
    assert again["spec"]["strategy"]["seed"] == body["spec"]["strategy"]["seed"]


def test_direction_defaults_to_the_metrics_natural_one(api: httpx.Client, make_spec) -> None:
    body = _post(api, make_spec("loss", objective={"metric": "val_loss"})).json()
    assert body["objective"]["direction"] == "minimize"


def test_duplicate_name_is_409_and_keeps_the_first(api: httpx.Client, make_spec) -> None:
    assert _post(api, make_spec("dup")).status_code == 201
    other = make_spec("dup", budget={"max_trials": 99, "max_parallel": 1, "epochs": 1})
    second = _post(api, other)
    assert second.status_code == 409
    assert "name" in second.json()["detail"]
    assert api.get("/studies/dup").json()["max_trials"] == 4


def test_unknown_study_is_404(api: httpx.Client) -> None:
    response = api.get("/studies/nope")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def _with_space(make_spec, **param: Any) -> dict[str, Any]:
    spec = make_spec("bad")
    spec["space"].update(param)
    return spec


BAD_SPECS = [
    (
        "misspelled parameter name",
        lambda m: _with_space(m, learnig_rate={"type": "float", "low": 0.1, "high": 1.0}),
        "space.learnig_rate",
    ),
    (
        "unknown fixed parameter",
        lambda m: {**m("bad"), "train": {"model": "mlp", "params": {"lr_typo": 0.1}}},
        "train.params.lr_typo",
    ),
    (
        "lone surrogate in a choice",
        lambda m: _with_space(m, activation={"type": "categorical", "choices": ["\ud800"]}),
        "space.activation",
    ),
    (
        "NUL in a fixed parameter",
        lambda m: {**m("bad"), "train": {"model": "mlp", "params": {"activation": "re\x00lu"}}},
        "train.params.activation",
    ),
    (
        "seed beyond a database integer",
        lambda m: {**m("bad"), "strategy": {"name": "random", "seed": 3_000_000_000}},
        "strategy.seed",
    ),
    # (description, mutate(spec) -> spec, expected field)
    (
        "low above high",
        lambda m: _with_space(m, lr={"type": "float", "low": 1.0, "high": 0.1}),
        "space.lr",
    ),
    (
        "log with low <= 0",
        lambda m: _with_space(m, lr={"type": "float", "low": 0.0, "high": 1.0, "log": True}),
        "space.lr",
    ),
    (
        "infinite bound",
        lambda m: _with_space(m, lr={"type": "float", "low": 0.0, "high": float("inf")}),
        "space.lr",
    ),
    (
        "NaN bound",
        lambda m: _with_space(m, lr={"type": "float", "low": float("nan"), "high": 1.0}),
        "space.lr",
    ),
    (
        "empty choices",
        lambda m: _with_space(m, act={"type": "categorical", "choices": []}),
        "space.act",
    ),
    (
        "duplicate choices",
        lambda m: _with_space(m, act={"type": "categorical", "choices": ["a", "a"]}),
        "space.act",
    ),
    (
        "unknown parameter type",
        lambda m: _with_space(m, x={"type": "complex", "low": 0, "high": 1}),
        "space.x",
    ),
    ("empty space", lambda m: {**m("bad"), "space": {}}, "space"),
    ("unknown strategy", lambda m: {**m("bad"), "strategy": {"name": "magic"}}, "strategy.name"),
    (
        "unknown strategy option",
        lambda m: {**m("bad"), "strategy": {"name": "random", "options": {"bogus": 1}}},
        "strategy.options.bogus",
    ),
    (
        "unknown model",
        lambda m: {**m("bad"), "train": {"model": "transformer", "dataset": "digits"}},
        "train.model",
    ),
    (
        "unknown dataset",
        lambda m: {**m("bad"), "train": {"model": "mlp", "dataset": "imagenet"}},
        "train.dataset",
    ),
    ("unknown metric", lambda m: {**m("bad"), "objective": {"metric": "f1"}}, "objective.metric"),
    (
        "negative max_trials",
        lambda m: {**m("bad"), "budget": {"max_trials": -1}},
        "budget.max_trials",
    ),
    (
        "zero max_parallel",
        lambda m: {**m("bad"), "budget": {"max_parallel": 0}},
        "budget.max_parallel",
    ),
    ("negative epochs", lambda m: {**m("bad"), "budget": {"epochs": -3}}, "budget.epochs"),
    ("bad name", lambda m: {**m("bad"), "name": "has spaces/slash"}, "name"),
    ("unknown top-level key", lambda m: {**m("bad"), "budgett": {}}, "budgett"),
    (
        "fixed param also searched",
        lambda m: {
            **m("bad"),
            "train": {"model": "mlp", "dataset": "digits", "params": {"lr": 0.1}},
        },
        "train.params.lr",
    ),
    (
        "grid too large",
        lambda m: {
            **m("bad"),
            "strategy": {"name": "grid", "options": {"points": 1000}},
            "space": {f"p{i}": {"type": "float", "low": 0, "high": 1} for i in range(4)},
        },
        "space",
    ),
]


@pytest.mark.parametrize(("what", "mutate", "field"), BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_spec_is_422_naming_the_field_and_writes_nothing(
    api: httpx.Client, make_spec, what: str, mutate, field: str
) -> None:
    response = _post(api, mutate(make_spec))
    assert response.status_code == 422, response.text
    details = response.json()["detail"]
    fields = [d["field"] for d in details]
    assert any(f == field or f.startswith(field + ".") for f in fields), (what, details)
    assert all(d["msg"] for d in details)
    assert api.get("/studies").json() == []


def test_grid_too_large_message_says_how_big(api: httpx.Client, make_spec) -> None:
    spec = {
        **make_spec("big"),
        "strategy": {"name": "grid", "options": {"points": 1000}},
        "space": {f"p{i}": {"type": "float", "low": 0, "high": 1} for i in range(4)},
    }
    msg = _post(api, spec).json()["detail"][0]["msg"]
    assert "1000000000000" in msg.replace(",", "").replace("_", "") or "10^12" in msg


def test_malformed_json_is_422_not_500(api: httpx.Client) -> None:
    response = api.post(
        "/studies", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "body"


@pytest.mark.parametrize(
    "text",
    [
        "?",  # a YAML complex key: {None: None}
        "1: a",  # an integer key
        "a: .nan",
        "a: &x [*x]",  # an alias that contains itself
        "a: !!binary aGVsbG8=",
    ],
)
def test_spec_text_that_json_cannot_hold_is_422_naming_text(api: httpx.Client, text: str) -> None:
    response = api.post("/studies/parse", json={"text": text})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == "text"


def test_parsed_spec_text_creates_the_study(api: httpx.Client, make_spec) -> None:
    import yaml

    text = yaml.safe_dump(make_spec("from-text"))
    parsed = api.post("/studies/parse", json={"text": text})
    assert parsed.status_code == 200, parsed.text
    assert api.post("/studies", json=parsed.json()).status_code == 201


@pytest.mark.parametrize(
    "path",
    [
        "/trials/9223372036854775808",
        "/studies/x/trials/99999999999999999999",
        "/studies/x/trials?offset=9223372036854775808",
    ],
)
def test_huge_integers_in_paths_are_422_not_500(api: httpx.Client, path: str) -> None:
    assert api.get(path).status_code == 422


def test_stop_study_stops_queued_trials(api: httpx.Client, make_spec, wait) -> None:
    _post(api, make_spec("stopme", budget={"max_trials": 10, "max_parallel": 3, "epochs": 1}))
    wait(lambda: len(api.get("/studies/stopme/trials").json()) == 3)
    stopped = api.post("/studies/stopme/stop")
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped"
    trials = api.get("/studies/stopme/trials").json()
    assert {t["status"] for t in trials} == {"stopped"}
    # idempotent, and no new trials are scheduled afterwards
    assert api.post("/studies/stopme/stop").status_code == 200
    assert len(api.get("/studies/stopme/trials").json()) == 3


def test_trials_list_pages_and_filters(api: httpx.Client, make_spec, wait) -> None:
    _post(api, make_spec("pages", budget={"max_trials": 5, "max_parallel": 5, "epochs": 1}))
    wait(lambda: len(api.get("/studies/pages/trials").json()) == 5)
    page = api.get("/studies/pages/trials", params={"limit": 2, "offset": 2})
    assert [t["number"] for t in page.json()] == [2, 3]
    assert page.headers["x-total-count"] == "5"
    assert api.get("/studies/pages/trials", params={"status": "completed"}).json() == []
    bad = api.get("/studies/pages/trials", params={"status": "weird"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "status"


def test_a_multi_fidelity_studys_best_trial_trained_the_full_budget(
    api: httpx.Client, make_spec, live_server
) -> None:
    """Values at different budgets do not compare: a 3-epoch trial at 0.9667 beats its
    own 9-epoch continuation (0.9472) only because it stopped early. The best trial is
    the best at the full budget once one trained it; until then the best so far, and
    the study says at which budget."""
    from datetime import datetime, timezone

    from sqlalchemy import create_engine, insert, select, update

    from server.tables import Study, Trial

    spec = make_spec("mf", budget={"max_trials": 100, "max_parallel": 1, "epochs": 9})
    spec["strategy"] = {"name": "hyperband", "seed": 3, "options": {"eta": 3}}
    spec["runner"] = "external"  # the scheduler creates no trial: the test writes them
    assert api.post("/studies", json=spec).status_code == 201
    engine = create_engine(live_server.settings.resolved_database_url)
    now = datetime.now(timezone.utc)
    rows = [  # (number, budget, rung, parent, value)
        (0, 1, 0, None, 0.90),
        (1, 3, 1, 0, 0.9667),
        (2, 1, 0, None, 0.80),
    ]
    with engine.begin() as conn:
        sid = conn.execute(select(Study.id).where(Study.name == "mf")).scalar()
        for number, budget, rung, parent, value in rows:
            info = {"bracket": 2, "rung": rung, "budget": budget}
            if parent is not None:
                info["parent"] = parent
            conn.execute(
                insert(Trial).values(
                    study_id=sid,
                    number=number,
                    status="completed",
                    params={"lr": 0.01},
                    info=info,
                    value=value,
                    attempt=1,
                    created_at=now,
                    finished_at=now,
                )
            )
    study = api.get("/studies/mf").json()
    assert study["full_budget"] == 9
    assert study["best_trial"]["number"] == 1 and study["best_budget"] == 3  # none at 9 yet
    with engine.begin() as conn:
        info = {"bracket": 2, "rung": 2, "budget": 9, "parent": 1}
        conn.execute(
            insert(Trial).values(
                study_id=sid,
                number=3,
                status="completed",
                params={"lr": 0.01},
                info=info,
                value=0.9472,
                attempt=1,
                created_at=now,
                finished_at=now,
            )
        )
    study = api.get("/studies/mf").json()
    assert study["best_trial"]["number"] == 3 and study["best_budget"] == 9
    assert study["best_trial"]["value"] == pytest.approx(0.9472)
    with engine.begin() as conn:  # a failed full-budget trial never counts
        conn.execute(update(Trial).where(Trial.number == 3).values(status="failed", value=None))
    assert api.get("/studies/mf").json()["best_trial"]["number"] == 1
    engine.dispose()
    plain = api.get("/studies").json()
    assert all(s["full_budget"] is None for s in plain if s["name"] != "mf")
